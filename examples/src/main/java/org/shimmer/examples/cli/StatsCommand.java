package org.shimmer.examples.cli;

import java.time.Duration;
import java.util.OptionalInt;
import java.util.concurrent.Callable;
import org.shimmer.runtime.shim.ContainerStats;
import org.shimmer.runtime.shim.ShimClient;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * {@code stats}: a container's resource use from its live shim, typed ({@link ContainerStats}) and in human units,
 * as {@code docker stats} prints it: the CPU share over the last interval, memory usage against its limit, pids.
 * Streams a line per {@link #INTERVAL} until the container stops (or the CLI is interrupted); {@code --no-stream}
 * prints one line, from two samples an interval apart.
 */
@Command(name = "stats", mixinStandardHelpOptions = true, description = "Show a container's resource usage.")
final class StatsCommand implements Callable<Integer> {

    /** Between two samples: a CPU share is measured over it. */
    static final Duration INTERVAL = Duration.ofSeconds(1);

    private static final String FORMAT = "%-20s %-8s %-10s %-24s %-8s %s%n";

    @ParentCommand
    ShimmerCli shimmer;

    @Option(names = "--no-stream", description = "Print one line and exit.")
    boolean noStream;

    @Parameters(index = "0", paramLabel = "ID", description = "The container's id.")
    String id;

    /** One sample and when it was taken. */
    private record Sample(ContainerStats stats, long nanoTime) {}

    @Override
    public Integer call() {
        CliContext context = shimmer.context();
        try (StopSignals signals = StopSignals.install()) {
            return stats(context, signals);
        }
    }

    private int stats(CliContext context, StopSignals signals) {
        ShimClient shim = Shims.require(context, id);
        try {
            context.out.printf(FORMAT, "ID", "CPU %", "CPU TIME", "MEM USAGE / LIMIT", "MEM %", "PIDS");
            context.out.flush();
            if (context.out.checkError()) {
                return ExitCodes.BROKEN_PIPE;
            }
            // Each sample an interval after the previous one ended: a slow answer delays the next, never overflows.
            Flux<Sample> samples = sample(shim).concatWith(Mono.delay(INTERVAL).then(sample(shim)).repeat());
            Flux<String> lines = samples.buffer(2, 1)
                    .filter(pair -> pair.size() == 2)
                    .map(pair -> line(pair.get(0), pair.get(1)));
            if (noStream) {
                context.out.print(lines.blockFirst(CliContext.TIMEOUT));
            } else {
                // A stopped container has no stats to give: that ends the stream; any other failure is one.
                // The JVM ignores SIGPIPE and PrintStream swallows the error: a closed stdout (| head -2) ends it.
                OptionalInt signalled = signals.await(lines.takeWhile(line -> {
                    context.out.print(line);
                    context.out.flush();
                    return !context.out.checkError();
                }).onErrorResume(failed -> stopped(context).flatMap(stopped -> stopped ? Mono.<String>empty()
                        : Mono.error(failed))).then());
                if (signalled.isPresent()) {
                    return signalled.getAsInt();
                }
            }
        } finally {
            shim.close().block(CliContext.TIMEOUT);
        }
        return context.out.checkError() ? ExitCodes.BROKEN_PIPE : 0;
    }

    /**
     * Whether the container has stopped (or is gone). Asked where a sample failed, on the thread that brought the
     * failure (a shim connection's event loop, a timer): never blocking there.
     */
    private Mono<Boolean> stopped(CliContext context) {
        return context.runtime().inspect(context.namespace(), id).timeout(CliContext.TIMEOUT)
                .map(seen -> seen.container().map(container -> !container.alive()).orElse(true));
    }

    private static Mono<Sample> sample(ShimClient shim) {
        return shim.stats().map(stats -> new Sample(stats, System.nanoTime()));
    }

    private String line(Sample before, Sample now) {
        ContainerStats stats = now.stats();
        long cpu = stats.cpu().usageNanos() - before.stats().cpu().usageNanos();
        ContainerStats.Memory memory = stats.memory();
        String limit = memory.limitBytes().isPresent() ? HumanUnits.bytes(memory.limitBytes().getAsLong())
                : "unlimited";
        String share = memory.limitBytes().isPresent()
                ? HumanUnits.percent(memory.usageBytes(), memory.limitBytes().getAsLong()) : "-";
        String pids = stats.pids().current() + stats.pids().limit().stream().mapToObj(max -> " / " + max)
                .findFirst().orElse("");
        return String.format(FORMAT, id, HumanUnits.percent(cpu, now.nanoTime() - before.nanoTime()),
                HumanUnits.seconds(stats.cpu().usageNanos()), HumanUnits.bytes(memory.usageBytes()) + " / " + limit,
                share, pids);
    }
}
