package org.shimmer.examples.cli;

import java.util.List;
import java.util.concurrent.Callable;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ShimClient;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code wait}: blocks until each container has exited and prints its exit status, in the order given; the CLI
 * exits with the last one's, as {@code docker wait} prints them. A container that exited already answers at once.
 */
@Command(name = "wait", mixinStandardHelpOptions = true,
        description = "Wait for containers to exit and print their exit statuses.")
final class WaitCommand implements Callable<Integer> {

    @ParentCommand
    ShimmerCli shimmer;

    @Parameters(arity = "1..*", paramLabel = "ID", description = "The containers' ids.")
    List<String> ids;

    @Override
    public Integer call() {
        CliContext context = shimmer.context();
        int status = 0;
        for (String id : ids) {
            ShimClient shim = Shims.require(context, id);
            try {
                // No bound: a container may run for as long as it likes.
                ExitStatus exit = shim.awaitExit().block();
                status = exit.status();
            } finally {
                shim.close().block(CliContext.TIMEOUT);
            }
            context.out.println(status);
        }
        return status;
    }
}
