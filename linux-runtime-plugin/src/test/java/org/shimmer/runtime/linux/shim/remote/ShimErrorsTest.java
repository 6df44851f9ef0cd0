package org.shimmer.runtime.linux.shim.remote;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.InvalidIdentifierException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.ResourceExhaustedException;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.ttrpc.StatusCode;
import org.shimmer.runtime.linux.ttrpc.TtrpcClosedException;
import org.shimmer.runtime.linux.ttrpc.TtrpcStatusException;
import org.shimmer.runtime.linux.ttrpc.TtrpcTimeoutException;
import org.shimmer.runtime.shim.ShimException;
import reactor.core.Exceptions;

/**
 * Issue 9, finding 8: what a caller gets for each kind of failure, as a table. Pure logic: the shims' real
 * failures are in {@code ShimContractTest}.
 */
class ShimErrorsTest {

    private static final String TASK = "task ns/c1";

    static Stream<Arguments> failures() {
        IOException full = new IOException("No space left on device");
        return Stream.of(
                Arguments.of(status(StatusCode.NOT_FOUND, "process does not exist e1"), NotFoundException.class),
                Arguments.of(status(StatusCode.ALREADY_EXISTS, "id e1: already exists"), AlreadyExistsException.class),
                Arguments.of(status(StatusCode.FAILED_PRECONDITION, "not running"), FailedPreconditionException.class),
                Arguments.of(status(StatusCode.RESOURCE_EXHAUSTED, "too many"), ResourceExhaustedException.class),
                Arguments.of(status(StatusCode.UNAVAILABLE, "ttrpc: closed"), UnavailableException.class),
                Arguments.of(status(StatusCode.UNKNOWN, "OCI runtime create failed: runc create failed: mkdir "
                        + "/run/x: no space left on device: unknown"), ResourceExhaustedException.class),
                Arguments.of(status(StatusCode.UNKNOWN, "cannot start a running process"),
                        FailedPreconditionException.class),
                Arguments.of(status(StatusCode.UNKNOWN, "cannot delete a running process"),
                        FailedPreconditionException.class),
                Arguments.of(status(StatusCode.UNKNOWN, "criu failed: type NOTIFY errno 0"), ShimException.class),
                Arguments.of(full, ResourceExhaustedException.class),
                Arguments.of(new UncheckedIOException(full), ResourceExhaustedException.class),
                Arguments.of(Exceptions.propagate(full), ResourceExhaustedException.class),
                Arguments.of(new IOException("Permission denied"), ShimException.class),
                Arguments.of(new ResourceExhaustedException("runc create failed: no space left on device", full),
                        ResourceExhaustedException.class),
                Arguments.of(new InvalidIdentifierException("exec id", "../x", "bad"), InvalidIdentifierException.class));
    }

    /** Every gRPC status code, and the error code a caller gets for it. */
    static Stream<Arguments> statusCodes() {
        return Stream.of(
                Arguments.of(StatusCode.NOT_FOUND, "process does not exist e1", ErrorCode.NOT_FOUND),
                Arguments.of(StatusCode.ALREADY_EXISTS, "id e1: already exists", ErrorCode.ALREADY_EXISTS),
                Arguments.of(StatusCode.FAILED_PRECONDITION, "x", ErrorCode.FAILED_PRECONDITION),
                Arguments.of(StatusCode.INVALID_ARGUMENT, "x", ErrorCode.INVALID_ARGUMENT),
                Arguments.of(StatusCode.OUT_OF_RANGE, "x", ErrorCode.INVALID_ARGUMENT),
                Arguments.of(StatusCode.UNAVAILABLE, "ttrpc: closed", ErrorCode.UNAVAILABLE),
                Arguments.of(StatusCode.DEADLINE_EXCEEDED, "context deadline exceeded", ErrorCode.DEADLINE_EXCEEDED),
                Arguments.of(StatusCode.RESOURCE_EXHAUSTED, "x", ErrorCode.RESOURCE_EXHAUSTED),
                // UNKNOWN and INTERNAL are read by their words, as the local shim reads runc's.
                Arguments.of(StatusCode.UNKNOWN, "cannot exec in a stopped state", ErrorCode.FAILED_PRECONDITION),
                Arguments.of(StatusCode.UNKNOWN, "cannot resume a running process", ErrorCode.FAILED_PRECONDITION),
                Arguments.of(StatusCode.UNKNOWN, "cannot pause a stopped container", ErrorCode.FAILED_PRECONDITION),
                Arguments.of(StatusCode.UNKNOWN, "OCI runtime exec failed: exec failed: container does not exist: "
                        + "unknown", ErrorCode.NOT_FOUND),
                Arguments.of(StatusCode.UNKNOWN, "runc create failed: container with given ID already exists",
                        ErrorCode.ALREADY_EXISTS),
                Arguments.of(StatusCode.INTERNAL, "write /x: no space left on device", ErrorCode.RESOURCE_EXHAUSTED),
                Arguments.of(StatusCode.UNKNOWN, "criu failed: type NOTIFY errno 0", ErrorCode.INTERNAL),
                Arguments.of(StatusCode.CANCELLED, "context canceled", ErrorCode.INTERNAL),
                Arguments.of(StatusCode.UNIMPLEMENTED, "not implemented", ErrorCode.INTERNAL),
                Arguments.of(StatusCode.PERMISSION_DENIED, "x", ErrorCode.INTERNAL));
    }

    @ParameterizedTest
    @MethodSource("statusCodes")
    void eachStatusCodeHasItsErrorCode(StatusCode status, String message, ErrorCode expected) {
        ShimmerException mapped = (ShimmerException) ShimErrors.map("kill", TASK, status(status, message));

        assertThat(mapped.code()).isEqualTo(expected);
        assertThat(mapped.getMessage()).startsWith("kill " + TASK + ": " + message);
        assertThat(mapped).hasCauseInstanceOf(TtrpcStatusException.class);
    }

    @Test
    void aClosedConnectionIsUnavailableAndACallPastItsDeadlineIsDeadlineExceeded() {
        ShimmerException closed = (ShimmerException) ShimErrors.map("kill", TASK,
                new TtrpcClosedException("connection closed"));
        ShimmerException late = (ShimmerException) ShimErrors.map("kill", TASK,
                new TtrpcTimeoutException("no answer within PT0.3S"));

        assertThat(closed.code()).isEqualTo(ErrorCode.UNAVAILABLE);
        assertThat(closed).hasMessageStartingWith("kill " + TASK + ": ").hasCauseInstanceOf(TtrpcClosedException.class);
        assertThat(late.code()).isEqualTo(ErrorCode.DEADLINE_EXCEEDED);
        assertThat(late).hasMessageStartingWith("kill " + TASK + ": ").hasCauseInstanceOf(TtrpcTimeoutException.class);
    }

    @ParameterizedTest
    @MethodSource("failures")
    void everyFailureIsTypedAndKeepsItsCause(Throwable failure, Class<? extends Throwable> expected) {
        Throwable mapped = ShimErrors.map("create", TASK, failure);

        assertThat(mapped).isInstanceOf(expected);
        if (!(failure instanceof InvalidIdentifierException)) {
            assertThat(mapped.getMessage()).startsWith("create " + TASK + ": ");
            assertThat(mapped.getCause()).isNotNull();
            assertThat(mapped).hasRootCauseMessage(rootMessage(failure));
        }
        if (failure instanceof TtrpcStatusException status) {
            assertThat(mapped.getMessage()).contains(status.statusMessage());
        }
    }

    private static String rootMessage(Throwable failure) {
        Throwable root = failure;
        while (root.getCause() != null) {
            root = root.getCause();
        }
        return root.getMessage();
    }

    private static TtrpcStatusException status(StatusCode code, String message) {
        return new TtrpcStatusException(code, message);
    }
}
