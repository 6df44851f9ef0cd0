package org.shimmer.examples.cli;

import java.lang.reflect.RecordComponent;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.ParentCommand;

/** {@code events}: the runtime's task events as they come, one line each, until interrupted. */
@Command(name = "events", mixinStandardHelpOptions = true, description = "Print task events as they happen.")
final class EventsCommand implements Callable<Integer> {

    @ParentCommand
    ShimmerCli shimmer;

    @Override
    public Integer call() {
        CliContext context = shimmer.context();
        context.runtime().events().doOnNext(envelope -> context.out.printf("%s %s %s %s%n", envelope.timestamp(),
                envelope.namespace(), envelope.topic(), json(envelope.event()))).blockLast();
        return 0;
    }

    /** A task event as JSON: the record's components, in order. */
    static String json(Object event) {
        if (!(event instanceof Record record)) {
            return quote(String.valueOf(event));
        }
        StringBuilder json = new StringBuilder("{");
        for (RecordComponent component : record.getClass().getRecordComponents()) {
            try {
                Object value = component.getAccessor().invoke(record);
                if (json.length() > 1) {
                    json.append(", ");
                }
                json.append(quote(component.getName())).append(": ").append(value instanceof Number n ? n
                        : value instanceof Record nested ? json(nested) : quote(String.valueOf(value)));
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        }
        return json.append('}').toString();
    }

    private static String quote(String value) {
        return '"' + value.replace("\\", "\\\\").replace("\"", "\\\"") + '"';
    }
}
