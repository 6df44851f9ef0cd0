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
                        "topic", topic, "component " + InvalidIdentifierException.quote(component)
                                + " is not a valid identifier");
            }
        }
        return topic;
    }

    /**
     * Returns {@code prefix} if some valid topic starts with it: a leading slash, whole components before the
     * last slash, then the start of one (or nothing). Any other prefix would match no envelope, silently.
     *
     * @throws InvalidIdentifierException naming the prefix and what is wrong with it
     */
    public static String requireValidPrefix(String prefix) {
        if (prefix == null || prefix.isEmpty() || prefix.charAt(0) != '/') {
            throw new InvalidIdentifierException("topic prefix", prefix, "must start with '/'");
        }
        String[] components = prefix.substring(1).split("/", -1);
        for (int i = 0; i < components.length; i++) {
            String component = components[i];
            boolean last = i == components.length - 1;
            // The last may be cut anywhere: it starts an identifier if one more letter or digit completes it.
            if (!Identifiers.isValid(component)
                    && !(last && (component.isEmpty() || Identifiers.isValid(component + "0")))) {
                throw new InvalidIdentifierException("topic prefix", prefix, "component \"" + component + "\" "
                        + (last ? "does not start" : "is not") + " a valid identifier");
            }
        }
        return prefix;
    }
}
