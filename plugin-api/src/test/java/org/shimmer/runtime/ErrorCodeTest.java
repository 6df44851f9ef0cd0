package org.shimmer.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.shim.ShimException;

/** Issue 11: every error type has its stable code; a {@link ShimException} carries the one it was made with. */
class ErrorCodeTest {

    @Test
    void eachTypeHasItsCode() {
        assertThat(new NotFoundException("m").code()).isEqualTo(ErrorCode.NOT_FOUND);
        assertThat(new AlreadyExistsException("m").code()).isEqualTo(ErrorCode.ALREADY_EXISTS);
        assertThat(new FailedPreconditionException("m").code()).isEqualTo(ErrorCode.FAILED_PRECONDITION);
        assertThat(new InvalidIdentifierException("id", "a/b", "bad").code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
        assertThat(new InvalidSpecException("m").code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
        assertThat(new ResourceExhaustedException("m").code()).isEqualTo(ErrorCode.RESOURCE_EXHAUSTED);
        assertThat(new UnavailableException("m").code()).isEqualTo(ErrorCode.UNAVAILABLE);
    }

    @Test
    void aShimExceptionIsInternalUnlessMadeWithACode() {
        IOException cause = new IOException("why");

        assertThat(new ShimException("m").code()).isEqualTo(ErrorCode.INTERNAL);
        assertThat(new ShimException("m", cause).code()).isEqualTo(ErrorCode.INTERNAL);
        assertThat(new ShimException(ErrorCode.DEADLINE_EXCEEDED, "m").code()).isEqualTo(ErrorCode.DEADLINE_EXCEEDED);
        assertThat(new ShimException(ErrorCode.UNAVAILABLE, "m", cause)).hasCause(cause)
                .extracting(ShimException::code).isEqualTo(ErrorCode.UNAVAILABLE);
    }

    @Test
    void theNamesAreStable() {
        assertThat(ErrorCode.values()).extracting(Enum::name).containsExactly("NOT_FOUND", "ALREADY_EXISTS",
                "FAILED_PRECONDITION", "INVALID_ARGUMENT", "UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED",
                "INTERNAL");
    }
}
