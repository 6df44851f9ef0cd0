package org.shimmer.runtime;

/** Something the caller named does not exist. */
public class NotFoundException extends ShimmerException {

    public NotFoundException(String message) {
        super(message);
    }

    public NotFoundException(String message, Throwable cause) {
        super(message, cause);
    }

    /** Always {@link ErrorCode#NOT_FOUND}. */
    @Override
    public final ErrorCode code() {
        return ErrorCode.NOT_FOUND;
    }
}
