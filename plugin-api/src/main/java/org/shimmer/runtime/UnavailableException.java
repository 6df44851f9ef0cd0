package org.shimmer.runtime;

/**
 * What the operation needs cannot be reached right now: a shim that is detached or not answering, a runtime that
 * is stopping. The target itself may be fine; retrying later, or reattaching, may succeed.
 */
public class UnavailableException extends ShimmerException {

    public UnavailableException(String message) {
        super(message);
    }

    public UnavailableException(String message, Throwable cause) {
        super(message, cause);
    }

    /** Always {@link ErrorCode#UNAVAILABLE}. */
    @Override
    public final ErrorCode code() {
        return ErrorCode.UNAVAILABLE;
    }
}
