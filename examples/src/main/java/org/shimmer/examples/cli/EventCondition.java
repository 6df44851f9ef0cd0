package org.shimmer.examples.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.task.TaskEvent;

/**
 * One condition of {@code events --filter}: {@code topic=/tasks/exit} (or {@code topic=/tasks/*}, a prefix),
 * {@code container=ID} or {@code namespace=NS}.
 *
 * @param key which part of the event it looks at
 * @param value what that part must be
 */
record EventCondition(String key, String value) implements Predicate<Envelope> {

    /** The conditions of one {@code --filter} value, comma-separated; each must match. */
    static List<EventCondition> parse(String filter) {
        List<EventCondition> conditions = new ArrayList<>();
        for (String part : filter.split(",")) {
            int equals = part.indexOf('=');
            if (equals <= 0 || equals == part.length() - 1) {
                throw new CliException("invalid --filter " + filter + ": each condition is KEY=VALUE, e.g."
                        + " topic=/tasks/exit,container=c1");
            }
            String key = part.substring(0, equals).strip();
            if (!List.of("topic", "container", "namespace").contains(key)) {
                throw new CliException("invalid --filter " + filter + ": unknown key " + key
                        + " (topic, container or namespace)");
            }
            conditions.add(new EventCondition(key, part.substring(equals + 1).strip()));
        }
        return conditions;
    }

    @Override
    public boolean test(Envelope envelope) {
        return switch (key) {
            case "topic" -> value.endsWith("*") ? envelope.topic().startsWith(value.substring(0, value.length() - 1))
                    : envelope.topic().equals(value);
            case "namespace" -> envelope.namespace().equals(value);
            case "container" -> envelope.event() instanceof TaskEvent event && event.containerId().equals(value);
            default -> throw new IllegalStateException("unparsed key " + key);
        };
    }
}
