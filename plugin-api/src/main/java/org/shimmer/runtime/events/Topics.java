package org.shimmer.runtime.events;

import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.InvalidIdentifierException;

/** containerd's topic rules: a leading slash, then one or more {@linkplain Identifiers identifiers} split by slashes. */
public final class Topics {

    private Topics() {}

    /**
     * Returns {@code topic} if it is valid.
     *
     * @throws InvalidIdentifierException naming the topic and what is wrong with it
     */
    public static String requireValid(String topic) {
        if (topic == null || topic.isEmpty()) {
            throw new InvalidIdentifierException("topic", topic, "must not be empty");
        }
        if (topic.charAt(0) != '/') {
            throw new InvalidIdentifierException("topic", topic, "must start with '/'");
        }
        if (topic.length() == 1) {
            throw new InvalidIdentifierException("topic", topic, "must have at least one component");
        }
        for (String component : topic.substring(1).split("/", -1)) {
            if (!Identifiers.isValid(component)) {
                throw new InvalidIdentifierException(
                        "topic", topic, "component \"" + component + "\" is not a valid identifier");
            }
        }
        return topic;
    }
}
