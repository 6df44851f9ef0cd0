package org.shimmer.runtime;

/**
 * The operation is valid but not in the current state of its target: deleting a bundle whose container still
 * runs, starting a process twice, shutting a shim down before its task is deleted. Nothing was changed.
 */
public class FailedPreconditionException extends ShimmerException {

    public FailedPreconditionException(String message) {
        super(message);
    }

    public FailedPreconditionException(String message, Throwable cause) {
        super(message, cause);
    }

    /** Always {@link ErrorCode#FAILED_PRECONDITION}. */
    @Override
    public final ErrorCode code() {
        return ErrorCode.FAILED_PRECONDITION;
    }
}
