package org.shimmer.runtime.events;

import org.shimmer.runtime.Identifiers;

/**
 * Which envelopes a subscriber receives. Immutable; {@link #all()} matches everything and the {@code with*}
 * methods narrow a copy.
 *
 * @param namespace only this namespace, or {@code null} for every namespace
 * @param topicPrefix only topics starting with this, or {@code null} for every topic
 */
public record EventFilter(String namespace, String topicPrefix) {

    private static final EventFilter ALL = new EventFilter(null, null);

    public EventFilter {
        if (namespace != null) {
            Identifiers.requireValid("namespace", namespace);
        }
    }

    /** Matches every envelope. */
    public static EventFilter all() {
        return ALL;
    }

    /** A copy that matches only {@code namespace}. */
    public EventFilter withNamespace(String namespace) {
        return new EventFilter(namespace, topicPrefix);
    }

    /** A copy that matches only topics starting with {@code topicPrefix}, e.g. {@code /tasks/}. */
    public EventFilter withTopicPrefix(String topicPrefix) {
        return new EventFilter(namespace, topicPrefix);
    }

    /** Whether the envelope passes this filter. */
    public boolean matches(Envelope envelope) {
        return (namespace == null || namespace.equals(envelope.namespace()))
                && (topicPrefix == null || envelope.topic().startsWith(topicPrefix));
    }
}
