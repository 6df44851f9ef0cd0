package org.shimmer.runtime.events;

import java.time.Instant;
import java.util.Objects;
import java.util.Optional;

/**
 * One event as it travels through an {@link EventExchange}: when, in which namespace, on which topic, and the
 * typed event itself.
 *
 * @param timestamp when the event happened
 * @param namespace the namespace it belongs to
 * @param topic a slash-separated topic such as {@code /tasks/exit}
 * @param event the event, an instance of a type the publisher and subscribers share
 */
public record Envelope(Instant timestamp, String namespace, String topic, Object event) {

    public Envelope {
        Objects.requireNonNull(timestamp, "timestamp");
        Objects.requireNonNull(namespace, "namespace");
        Objects.requireNonNull(topic, "topic");
        Objects.requireNonNull(event, "event");
    }

    /** The event, if it is of the given type. */
    public <T> Optional<T> eventAs(Class<T> type) {
        return type.isInstance(event) ? Optional.of(type.cast(event)) : Optional.empty();
    }
}
