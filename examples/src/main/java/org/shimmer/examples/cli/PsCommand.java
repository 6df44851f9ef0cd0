package org.shimmer.examples.cli;

import java.util.concurrent.Callable;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.RuntimePlugin;
import picocli.CommandLine.Command;
import picocli.CommandLine.ParentCommand;

/**
 * {@code ps}: one line per bundle, what the machine shows ({@link RuntimePlugin#inspect}). Read-only, as
 * {@code ctr task ls}: it never connects to a shim, which would clean up after one that died (issue 13).
 */
@Command(name = "ps", mixinStandardHelpOptions = true, description = "List containers.")
final class PsCommand implements Callable<Integer> {

    private static final String FORMAT = "%-24s %-18s %s%n";

    @ParentCommand
    ShimmerCli shimmer;

    @Override
    public Integer call() {
        CliContext context = shimmer.context();
        RuntimePlugin runtime = context.runtime();
        context.out.printf(FORMAT, "ID", "STATUS", "PID");
        for (Bundle bundle : runtime.list(context.namespace()).collectList().block(CliContext.TIMEOUT)) {
            BundleInspection seen = runtime.inspect(context.namespace(), bundle.id()).block(CliContext.TIMEOUT);
            String pid = seen.container().filter(c -> c.pid() != 0).map(c -> Integer.toString(c.pid())).orElse("-");
            context.out.printf(FORMAT, bundle.id(), seen.describe(), pid);
        }
        return 0;
    }
}
