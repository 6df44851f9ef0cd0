package org.shimmer.runtime.events;

import java.util.Objects;

/**
 * How many undelivered events one subscriber may hold, and what happens beyond that.
 *
 * @param capacity the number of events buffered for a subscriber that has not asked for them yet, at least 1
 * @param overflow what to do when the buffer is full
 */
public record Backlog(int capacity, OverflowPolicy overflow) {

    /** The default capacity. */
    public static final int DEFAULT_CAPACITY = 1024;

    private static final Backlog DEFAULT = new Backlog(DEFAULT_CAPACITY, OverflowPolicy.DROP_OLDEST);

    public Backlog {
        if (capacity < 1) {
            throw new IllegalArgumentException("backlog capacity must be at least 1, was " + capacity);
        }
        Objects.requireNonNull(overflow, "overflow");
    }

    /** {@value #DEFAULT_CAPACITY} events, dropping the oldest. */
    public static Backlog defaults() {
        return DEFAULT;
    }

    /** A backlog of {@code capacity} events with the given policy. */
    public static Backlog of(int capacity, OverflowPolicy overflow) {
        return new Backlog(capacity, overflow);
    }
}
