package org.shimmer.examples.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Callable;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.spec.Spec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code exec}: another process in a running container, in the foreground. docker's form {@code exec ID CMD...}
 * names the process itself ({@code --exec-id} to choose); {@code ctr}'s old form {@code exec ID EXEC_ID -- CMD...}
 * still works. The process is deleted from its shim once it exited.
 */
@Command(name = "exec", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Run a command in a running container.",
        customSynopsis = {"shimmer exec [OPTIONS] ID CMD [ARG...]", "shimmer exec [OPTIONS] ID EXEC_ID -- CMD [ARG...]"})
final class ExecCommand implements Callable<Integer> {

    @ParentCommand
    ShimmerCli shimmer;

    @Mixin
    ProcessOptions process;

    @Option(names = "--exec-id", paramLabel = "NAME", description = "The process's name (default: generated).")
    String execId;

    @Parameters(index = "0", paramLabel = "ID", description = "The container's id.")
    String id;

    @Parameters(index = "1..*", paramLabel = "CMD", description = "The command and its arguments.")
    List<String> words = new ArrayList<>();

    @Override
    public Integer call() {
        CliContext context = shimmer.context();
        List<String> command = command();
        if (process.tty) {
            throw new CliException("-t is not supported yet");
        }
        Bundle bundle = context.runtime().load(context.namespace(), id).block(CliContext.TIMEOUT);
        Spec.Process.Builder spec = Spec.Process.builder().args(command);
        for (Map.Entry<String, String> variable : process.environment(context.environment).entrySet()) {
            spec.env(variable.getKey(), variable.getValue());
        }
        if (process.cwd != null) {
            spec.cwd(process.cwd);
        }
        if (process.user != null) {
            int[] ids = Users.resolve(process.user, bundle.rootfs());
            spec.user(ids[0], ids[1]);
        }
        Foreground foreground = new Foreground(context, process.interactive);
        ShimClient shim = Shims.require(context, id);
        try {
            ProcessIo io = shim.exec(execId, spec.build(), foreground.stdio()).block(CliContext.TIMEOUT);
            int status;
            try (StopSignals signals = StopSignals.install()) {
                status = foreground.attach(shim, io, execId, signals);
            }
            shim.delete(execId).block(CliContext.TIMEOUT);
            return status;
        } finally {
            shim.close().block(CliContext.TIMEOUT);
        }
    }

    /** The command, from either form; sets {@link #execId}. */
    private List<String> command() {
        List<String> command = words;
        if (command.size() >= 2 && command.get(1).equals("--") && !command.getFirst().equals("--")) {
            if (execId != null) {
                throw new CliException("exec name given twice: --exec-id " + execId + " and " + command.getFirst());
            }
            execId = command.getFirst();
            command = command.subList(2, command.size());
        } else if (!command.isEmpty() && command.getFirst().equals("--")) {
            command = command.subList(1, command.size());
        }
        if (command.isEmpty()) {
            throw new CliException("exec needs a command after the ID");
        }
        if (execId == null) {
            execId = "exec-" + UUID.randomUUID().toString().substring(0, 8);
        }
        return command;
    }
}
