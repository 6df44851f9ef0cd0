package org.shimmer.runtime;

/** Something to be created exclusively exists already; the existing one was left untouched. */
public class AlreadyExistsException extends ShimmerException {

    public AlreadyExistsException(String message) {
        super(message);
    }

    public AlreadyExistsException(String message, Throwable cause) {
        super(message, cause);
    }

    /** Always {@link ErrorCode#ALREADY_EXISTS}. */
    @Override
    public final ErrorCode code() {
        return ErrorCode.ALREADY_EXISTS;
    }
}
