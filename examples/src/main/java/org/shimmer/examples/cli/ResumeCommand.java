package org.shimmer.examples.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code resume}: thaws a container {@code pause} froze, through its live shim. */
@Command(name = "resume", mixinStandardHelpOptions = true, description = "Resume a paused container.")
final class ResumeCommand implements Callable<Integer> {

    @ParentCommand
    ShimmerCli shimmer;

    @Parameters(index = "0", paramLabel = "ID", description = "The container's id.")
    String id;

    @Override
    public Integer call() {
        CliContext context = shimmer.context();
        Shims.call(context, id, shim -> shim.resume());
        context.out.println(id);
        return 0;
    }
}
