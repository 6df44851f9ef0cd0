package org.shimmer.runtime.events;

import org.shimmer.runtime.ShimmerException;

/** A subscriber with {@link OverflowPolicy#FAIL} fell further behind than its backlog allows. */
public class EventOverflowException extends ShimmerException {

    public EventOverflowException(String message, Throwable cause) {
        super(message, cause);
    }
}
