package org.shimmer.runtime;

/**
 * A resource of the machine ran out: no space left on a device, no descriptors, no processes. The cause keeps
 * the system's own error; whatever the failed call made was removed.
 */
public class ResourceExhaustedException extends ShimmerException {

    public ResourceExhaustedException(String message) {
        super(message);
    }

    public ResourceExhaustedException(String message, Throwable cause) {
        super(message, cause);
    }

    /** Always {@link ErrorCode#RESOURCE_EXHAUSTED}. */
    @Override
    public final ErrorCode code() {
        return ErrorCode.RESOURCE_EXHAUSTED;
    }
}
