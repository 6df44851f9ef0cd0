package org.shimmer.examples.cli;

import java.util.concurrent.Callable;
import org.shimmer.runtime.shim.ShimClient;
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
        ShimClient shim = Shims.require(context, id);
        try {
            shim.pause().block(CliContext.TIMEOUT);
        } finally {
            shim.close().block(CliContext.TIMEOUT);
        }
        context.out.println(id);
        return 0;
    }
}
