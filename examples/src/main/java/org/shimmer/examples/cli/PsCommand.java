package org.shimmer.examples.cli;

import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.shim.TaskState;
import picocli.CommandLine.Command;
import picocli.CommandLine.ParentCommand;

/**
 * {@code ps}: one line per bundle, what the machine shows ({@link RuntimePlugin#inspect}) or, when its remote shim
 * lives, what that shim answers ({@link RuntimePlugin#taskState}). Read-only for containers, as
 * {@code ctr task ls}: it never connects to a shim, which would clean up after one that died (issue 13). Its list
 * does remove a bounded share of what cut-short deletes left hidden, no container's.
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
        // Listed before the header is printed: a failure (a bad namespace) is its one line, under no table.
        List<Bundle> bundles = runtime.list(context.namespace()).collectList().block(CliContext.TIMEOUT);
        context.out.printf(FORMAT, "ID", "STATUS", "PID");
        for (Bundle bundle : bundles) {
            BundleInspection seen = runtime.inspect(context.namespace(), bundle.id()).block(CliContext.TIMEOUT);
            String status = seen.describe();
            String pid = seen.container().filter(c -> c.pid() != 0).map(c -> Integer.toString(c.pid())).orElse("-");
            // A live remote shim's own view, asked without attaching (RuntimePlugin#taskState).
            TaskState task = Shims.remoteAlive(seen)
                    ? runtime.taskState(context.namespace(), bundle.id()).block(CliContext.TIMEOUT) : null;
            if (task != null) {
                status = task.status().name().toLowerCase(Locale.ROOT);
                // A stopped task's pid is its exited init's: nothing runs, so none is shown, as without a shim.
                pid = task.pid() != 0 && task.status() != TaskState.Status.STOPPED ? Integer.toString(task.pid())
                        : "-";
            }
            context.out.printf(FORMAT, bundle.id(), status, pid);
        }
        return 0;
    }
}
