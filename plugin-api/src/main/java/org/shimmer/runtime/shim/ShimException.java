package org.shimmer.runtime.shim;

import java.util.Objects;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.ShimmerException;

/**
 * A shim operation failed: the shim refused it, the shim is gone, or it could not be started. Its
 * {@linkplain #code() code} says which kind of failure it was ({@link ErrorCode#UNAVAILABLE} for a shim that is
 * gone, {@link ErrorCode#DEADLINE_EXCEEDED} for one that did not answer in time, …).
 */
public class ShimException extends ShimmerException {

    private final ErrorCode code;

    /** A failure of no more precise kind: {@link ErrorCode#INTERNAL}. */
    public ShimException(String message) {
        this(ErrorCode.INTERNAL, message);
    }

    /** A failure of no more precise kind: {@link ErrorCode#INTERNAL}. */
    public ShimException(String message, Throwable cause) {
        this(ErrorCode.INTERNAL, message, cause);
    }

    public ShimException(ErrorCode code, String message) {
        super(message);
        this.code = Objects.requireNonNull(code, "code");
    }

    public ShimException(ErrorCode code, String message, Throwable cause) {
        super(message, cause);
        this.code = Objects.requireNonNull(code, "code");
    }

    @Override
    public ErrorCode code() {
        return code;
    }
}
