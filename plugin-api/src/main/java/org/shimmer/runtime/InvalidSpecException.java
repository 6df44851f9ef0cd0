package org.shimmer.runtime;

/** A runtime spec is not acceptable, for example not a JSON object. */
public class InvalidSpecException extends ShimmerException {

    public InvalidSpecException(String message) {
        super(message);
    }

    public InvalidSpecException(String message, Throwable cause) {
        super(message, cause);
    }

    /** Always {@link ErrorCode#INVALID_ARGUMENT}. */
    @Override
    public final ErrorCode code() {
        return ErrorCode.INVALID_ARGUMENT;
    }
}
