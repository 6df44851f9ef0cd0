package org.shimmer.examples.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Callable;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.spec.Spec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code exec}: another process in a running container, in the foreground, as docker's {@code exec ID CMD...}
 * ({@code --exec-id} names the process; default: generated). The process starts from the container's own (its
 * environment, user, directory, capabilities and limits, as {@code ctr task exec} does), {@code -e}, {@code -u} and
 * {@code -w} applied on top. It is deleted from its shim once it ended, also when it failed to start.
 */
@Command(name = "exec", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Run a command in a running container.",
        customSynopsis = "shimmer exec [OPTIONS] ID CMD [ARG...]")
final class ExecCommand implements Callable<Integer> {

    @ParentCommand
    ShimmerCli shimmer;

    @picocli.CommandLine.Spec
    CommandSpec commandSpec;

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
            // As for run: -t -i from a pipe would never type the end of input, and the exec would never end.
            TerminalForeground.requireTerminalInput(context, process.interactive);
        }
        Bundle bundle = context.runtime().load(context.namespace(), id).block(CliContext.TIMEOUT);
        Spec.Process.Builder spec = ContainerProcess.read(bundle).args(command).terminal(false);
        for (Map.Entry<String, String> variable : process.environment(context.environment).entrySet()) {
            spec.env(variable.getKey(), variable.getValue());
        }
        if (process.cwd != null) {
            spec.cwd(process.cwd);
        }
        if (process.user != null) {
            int[] ids = Users.resolve(process.user, bundle.rootfs());
            spec.user(ids[0], ids[1]).additionalGids();
        }
        ShimClient shim = Shims.require(context, id);
        try (Foreground foreground = process.tty ? new TerminalForeground(context, process.interactive)
                : new Foreground(context, process.interactive);
                StopSignals signals = StopSignals.install()) {
            ProcessIo io;
            try {
                io = shim.exec(execId, spec.build(), foreground.stdio()).block(CliContext.TIMEOUT);
            } catch (AlreadyExistsException taken) {
                throw taken; // another exec's name: that one is not ours to delete
            } catch (RuntimeException failed) {
                deleteAfter(shim, failed);
                throw failed;
            }
            int status;
            try {
                status = foreground.attach(shim, io, execId, signals);
            } catch (RuntimeException failed) {
                deleteAfter(shim, failed);
                throw failed;
            }
            shim.delete(execId).block(CliContext.TIMEOUT);
            return status;
        } finally {
            shim.close().block(CliContext.TIMEOUT);
        }
    }

    /** Deletes the exec from its shim after it failed, so that its name is free again; {@code failed} stays. */
    private void deleteAfter(ShimClient shim, RuntimeException failed) {
        try {
            shim.delete(execId).block(CliContext.TIMEOUT);
        } catch (NotFoundException never) {
            // Never created, or already deleted: the name is free.
        } catch (RuntimeException also) {
            failed.addSuppressed(also);
        }
    }

    /** The command, a leading {@code --} dropped; an option of ours after the ID refused; sets {@link #execId}. */
    private List<String> command() {
        List<String> command = words;
        if (!command.isEmpty() && command.getFirst().equals("--")) {
            command = command.subList(1, command.size());
        } else {
            CommandWords.requireNotAnOption(commandSpec, id, command);
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
