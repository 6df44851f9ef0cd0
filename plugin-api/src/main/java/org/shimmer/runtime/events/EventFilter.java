package org.shimmer.runtime.events;

import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.events.task.TaskEvent;

/**
 * Which envelopes a subscriber receives. Immutable; {@link #all()} matches everything and the {@code with*}
 * methods narrow a copy.
 *
 * <p>An exchange applies the filter before an envelope enters a subscriber's {@link Backlog}, so what a filter
 * rejects can never crowd out what it accepts. That is why a subscriber interested in one container filters by
 * container here instead of filtering the namespace's stream afterwards: a burst from other containers used to
 * fill its backlog and evict its own {@code /tasks/exit}.
 *
 * @param namespace only this namespace, or {@code null} for every namespace
 * @param topicPrefix only topics starting with this, or {@code null} for every topic; one no valid topic starts
 *     with (no leading slash, an empty component) is refused ({@link Topics#requireValidPrefix})
 * @param containerId only {@link TaskEvent}s about this container, or {@code null} for every event
 */
public record EventFilter(String namespace, String topicPrefix, String containerId) {

    private static final EventFilter ALL = new EventFilter(null, null, null);

    public EventFilter {
        if (namespace != null) {
            Identifiers.requireValid("namespace", namespace);
        }
        if (topicPrefix != null) {
            Topics.requireValidPrefix(topicPrefix);
        }
        if (containerId != null) {
            Identifiers.requireValid("container id", containerId);
        }
    }

    /** Matches every envelope. */
    public static EventFilter all() {
        return ALL;
    }

    /** Matches the task events of container {@code containerId} in {@code namespace}; both are required. */
    public static EventFilter container(String namespace, String containerId) {
        return new EventFilter(Identifiers.requireValid("namespace", namespace), null,
                Identifiers.requireValid("container id", containerId));
    }

    /** A copy that matches only {@code namespace}. */
    public EventFilter withNamespace(String namespace) {
        return new EventFilter(namespace, topicPrefix, containerId);
    }

    /** A copy that matches only topics starting with {@code topicPrefix}, e.g. {@code /tasks/}. */
    public EventFilter withTopicPrefix(String topicPrefix) {
        return new EventFilter(namespace, topicPrefix, containerId);
    }

    /**
     * A copy that matches only {@link TaskEvent}s whose {@link TaskEvent#containerId()} is {@code containerId};
     * ids are unique per namespace only, so narrow the namespace too, or use {@link #container}.
     */
    public EventFilter withContainer(String containerId) {
        return new EventFilter(namespace, topicPrefix, containerId);
    }

    /** Whether the envelope passes this filter. */
    public boolean matches(Envelope envelope) {
        return (namespace == null || namespace.equals(envelope.namespace()))
                && (topicPrefix == null || envelope.topic().startsWith(topicPrefix))
                && (containerId == null
                        || envelope.event() instanceof TaskEvent event && containerId.equals(event.containerId()));
    }
}
