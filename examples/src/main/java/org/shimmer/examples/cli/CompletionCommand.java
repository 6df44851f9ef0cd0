package org.shimmer.examples.cli;

import java.util.concurrent.Callable;
import picocli.AutoComplete;
import picocli.CommandLine.Command;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code completion}: a bash completion script for every command and option, generated from this CLI's model. */
@Command(name = "completion", mixinStandardHelpOptions = true,
        description = {"Print a bash completion script.", "Use: source <(shimmer completion)"})
final class CompletionCommand implements Callable<Integer> {

    @ParentCommand
    ShimmerCli shimmer;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        shimmer.context().out.print(AutoComplete.bash("shimmer", spec.parent().commandLine()));
        return 0;
    }
}
