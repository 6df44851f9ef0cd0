package org.shimmer.runtime.events;

/** What a subscriber's buffer does when it is full and another event arrives. */
public enum OverflowPolicy {
    /** Drop the oldest buffered event to make room: a slow subscriber sees the most recent events. */
    DROP_OLDEST,
    /** Drop the arriving event: a slow subscriber sees the earliest events. */
    DROP_NEWEST,
    /** End the subscription with an {@link EventOverflowException}. */
    FAIL
}
