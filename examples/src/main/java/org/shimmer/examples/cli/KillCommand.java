package org.shimmer.examples.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code kill}: a signal to a container's init process, through its live (remote) shim. */
@Command(name = "kill", mixinStandardHelpOptions = true, description = "Send a signal to a container.")
final class KillCommand implements Callable<Integer> {

    @ParentCommand
    ShimmerCli shimmer;

    @Option(names = {"-s", "--signal"}, paramLabel = "SIGNAL", description = "TERM, SIGTERM or 15 (default:"
            + " ${DEFAULT-VALUE}).")
    String signal = "TERM";

    @Option(names = {"-a", "--all"}, description = "Signal every process of the container.")
    boolean all;

    @Parameters(index = "0", paramLabel = "ID", description = "The container's id.")
    String id;

    @Override
    public Integer call() {
        int number = Signals.parse(signal);
        CliContext context = shimmer.context();
        Shims.call(context, id, shim -> shim.kill(number, all));
        return 0;
    }
}
