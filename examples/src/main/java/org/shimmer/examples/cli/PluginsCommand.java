package org.shimmer.examples.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.ParentCommand;

/** {@code plugins}: the plugins the host started, with their versions and paths. */
@Command(name = "plugins", mixinStandardHelpOptions = true, description = "List the loaded plugins.")
final class PluginsCommand implements Callable<Integer> {

    @ParentCommand
    ShimmerCli shimmer;

    @Override
    public Integer call() {
        CliContext context = shimmer.context();
        context.host().started().forEach(plugin -> context.out.printf("%s %s %s%n", plugin.getPluginId(),
                plugin.getDescriptor().getVersion(), plugin.getPluginPath()));
        return 0;
    }
}
