package org.shimmer.runtime.events;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.shimmer.runtime.Identifiers;

/**
 * The namespaces and topics an exchange has already found valid, so that each is checked once: the checks (a
 * regular expression per identifier, a split per topic) cost more than the rest of a publish did. Only valid names
 * are kept, so an invalid one fails every time; at most {@value #LIMIT} of each, beyond which names are checked on
 * every publish, so a stream of distinct names cannot grow it.
 */
final class ValidNames {

    private static final int LIMIT = 256;

    private final Set<String> namespaces = ConcurrentHashMap.newKeySet();
    private final Set<String> topics = ConcurrentHashMap.newKeySet();

    /** Checks both, naming the bad one. */
    void requireValid(String namespace, String topic) {
        if (namespace == null || !namespaces.contains(namespace)) {
            remember(namespaces, Identifiers.requireValid("namespace", namespace));
        }
        if (topic == null || !topics.contains(topic)) {
            remember(topics, Topics.requireValid(topic));
        }
    }

    private static void remember(Set<String> valid, String name) {
        if (valid.size() < LIMIT) {
            valid.add(name);
        }
    }
}
