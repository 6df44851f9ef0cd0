package org.shimmer.examples.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.Callable;
import org.shimmer.runtime.events.Envelope;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/**
 * {@code events}: the state root's task events as they come, one JSON object per line ({@link Json}: an event's
 * fields are data, control characters escaped), until interrupted. Every {@code --filter} must match, and every
 * condition within one. Ctrl-C (or SIGTERM, SIGHUP) ends it with 128 + the signal, the plugin stopped (and the
 * events socket it served removed) on the way out.
 */
@Command(name = "events", mixinStandardHelpOptions = true, description = "Print task events as they happen.")
final class EventsCommand implements Callable<Integer> {

    @ParentCommand
    ShimmerCli shimmer;

    @Option(names = "--filter", paramLabel = "KEY=VALUE[,KEY=VALUE...]",
            description = "Only events matching all of: topic=/tasks/exit (a trailing * matches a prefix),"
                    + " container=ID, namespace=NS. Repeatable; all filters must match.")
    List<String> filters = new ArrayList<>();

    @Override
    public Integer call() {
        List<EventCondition> conditions = filters.stream().flatMap(filter -> EventCondition.parse(filter).stream())
                .toList();
        CliContext context = shimmer.context();
        try (StopSignals signals = StopSignals.install()) {
            OptionalInt stopped = signals.await(context.runtime().events()
                    .filter(envelope -> conditions.stream().allMatch(condition -> condition.test(envelope)))
                    .takeWhile(envelope -> print(context, envelope))
                    .then());
            if (stopped.isPresent()) {
                return stopped.getAsInt();
            }
        }
        // The JVM ignores SIGPIPE and PrintStream swallows the error: a closed stdout (| head -1) ends us here.
        return context.out.checkError() ? ExitCodes.BROKEN_PIPE : 0;
    }

    /** Prints {@code envelope}; whether our stdout still takes what we print. */
    private static boolean print(CliContext context, Envelope envelope) {
        context.out.println(Json.line(envelope));
        context.out.flush();
        return !context.out.checkError();
    }
}
