package org.shimmer.examples.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code pause}: freezes every process of a container (its cgroup's freezer), through its live shim. */
@Command(name = "pause", mixinStandardHelpOptions = true, description = "Pause all processes of a container.")
final class PauseCommand implements Callable<Integer> {

    @ParentCommand
    ShimmerCli shimmer;

    @Parameters(index = "0", paramLabel = "ID", description = "The container's id.")
    String id;

    @Override
    public Integer call() {
        CliContext context = shimmer.context();
        Shims.call(context, id, shim -> shim.pause());
        context.out.println(id);
        return 0;
    }
}
