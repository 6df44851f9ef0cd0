package org.shimmer.runtime.events;

import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.ShimmerException;

/**
 * A subscriber with {@link OverflowPolicy#FAIL} fell further behind than its backlog allows: a bounded buffer ran
 * out, {@link ErrorCode#RESOURCE_EXHAUSTED} (not a bug of the runtime).
 */
public class EventOverflowException extends ShimmerException {

    public EventOverflowException(String message, Throwable cause) {
        super(message, cause);
    }

    @Override
    public ErrorCode code() {
        return ErrorCode.RESOURCE_EXHAUSTED;
    }
}
