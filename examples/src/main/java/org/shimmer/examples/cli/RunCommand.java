package org.shimmer.examples.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.spec.Mount;
import org.shimmer.runtime.spec.Spec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import reactor.core.publisher.Mono;

/**
 * {@code run}: a container from a directory or an image, in the foreground (its output ours, its exit status ours)
 * or detached. As docker's, every word after the ID is the command: options go before it ({@code --} is accepted
 * before the command, as the old syntax had it).
 */
@Command(name = "run", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Run a command in a new container.",
        customSynopsis = "shimmer run [OPTIONS] (--rootfs DIR | --image NAME) ID [--] [CMD [ARG...]]")
final class RunCommand implements Callable<Integer> {

    /**
     * What an image run's output may fall behind the terminal, per stream: such a run's output is the plugin's
     * {@link Container}'s, read at once and bounded (a directory run's waits for the terminal instead).
     */
    private static final int IMAGE_OUTPUT_BUFFER = 64 << 20;

    /** The options of this command, to tell one given after the ID. */
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec commandSpec;

    @ParentCommand
    ShimmerCli shimmer;

    @Option(names = "--rootfs", paramLabel = "DIR", description = "Root directory (never written: an overlay).")
    Path rootfs;

    @Option(names = "--image", paramLabel = "NAME", description = "An imported image (see images import).")
    String image;

    @Option(names = "--entrypoint", paramLabel = "WORD", description = "Replace the image's entrypoint (\"\" clears"
            + " it).")
    String entrypoint;

    @Option(names = {"-d", "--detach"}, description = "Run in the background, output to its log (implies --shim"
            + " remote).")
    boolean detach;

    @Option(names = "--rm", description = "Delete the container when it exits.")
    boolean remove;

    @Mixin
    ProcessOptions process;

    @Option(names = "--mount", paramLabel = "type=bind,src=PATH,dst=PATH[,ro]", converter = MountOption.class,
            description = "Bind a host path (or type=tmpfs,dst=PATH).")
    List<Mount> mounts = new ArrayList<>();

    @Option(names = {"-m", "--memory"}, paramLabel = "BYTES", converter = ByteSize.class,
            description = "Memory limit: 64m, 1g…")
    Long memory;

    @Option(names = "--cpus", paramLabel = "N", description = "CPU time, in CPUs: 0.5…")
    Double cpus;

    @Option(names = "--pids-limit", paramLabel = "N", description = "Most processes.")
    Long pidsLimit;

    @Option(names = "--hostname", paramLabel = "NAME", description = "Host name inside.")
    String hostname;

    @Option(names = "--read-only", description = "Mount the root read-only.")
    boolean readOnly;

    @Option(names = "--shim", paramLabel = "local|remote", description = "local: runc driven by this process;"
            + " remote: containerd-shim-runc-v2 (default: local, remote with -d).")
    String shim;

    @Option(names = "--shim-binary", paramLabel = "PATH", description = "The remote shim (default: ${DEFAULT-VALUE}).")
    String shimBinary = "containerd-shim-runc-v2";

    @Parameters(index = "0", paramLabel = "ID", description = "The container's id.")
    String id;

    @Parameters(index = "1..*", paramLabel = "CMD", description = "The command and its arguments.")
    List<String> command = new ArrayList<>();

    @Override
    public Integer call() {
        CliContext context = shimmer.context();
        List<String> args = command();
        String shimKind = checked(args);
        if (process.tty) {
            TerminalForeground.requireTerminalInput(context, process.interactive);
        }
        Spec spec = spec(context, args);
        Shims.requireExecutable("runc", "runc not found on the PATH (apt-get install runc)");
        if (shimKind.equals("remote")) {
            Shims.requireExecutable(shimBinary, "shim binary " + shimBinary + " not found");
        }
        ShimOpt opt = shimKind.equals("local") ? ShimOpt.local()
                : ShimOpt.remote(Path.of(shimBinary), Shims.daemonAddress(context), null, false, null);
        try (Foreground foreground = process.tty ? new TerminalForeground(context, process.interactive)
                        : new Foreground(context, process.interactive);
                StopSignals signals = StopSignals.install()) {
            if (image != null) {
                return runImage(context, spec, opt, foreground, signals);
            }
            return runDirectory(context, spec, opt, foreground, signals);
        } catch (AlreadyExistsException taken) {
            throw alreadyExists(context, taken);
        }
    }

    /**
     * A run of an id whose bundle is still there: the plugin's message names the Java API's remedy
     * ({@code forceDelete}); a user of the CLI is told its command, and what holds the id (a run whose CLI was
     * killed, or whose host crashed, left it {@code running (no shim)}: it used to say only "already exists").
     * Any other refusal ({@code runc}'s of a container it has) is passed on as it came.
     */
    private RuntimeException alreadyExists(CliContext context, AlreadyExistsException taken) {
        BundleInspection seen;
        try {
            seen = context.runtime().inspect(context.namespace(), id).block(CliContext.TIMEOUT);
        } catch (RuntimeException notInspected) {
            taken.addSuppressed(notInspected);
            return taken;
        }
        if (seen == null || !seen.present()) {
            return taken;
        }
        String holding = seen.inUse() ? "it is " + seen.describe() : "nothing of it runs";
        return new CliException("container " + id + " already exists (" + holding + "); remove it with 'shimmer rm -f "
                + id + "' (which kills whatever of it still runs), or choose another ID");
    }

    /** The command words, a leading {@code --} dropped; an option of ours given after the ID refused. */
    private List<String> command() {
        if (!command.isEmpty() && command.getFirst().equals("--")) {
            return command.subList(1, command.size());
        }
        CommandWords.requireNotAnOption(commandSpec, id, command);
        return command;
    }

    /** Checks the options together; returns the shim kind. */
    private String checked(List<String> args) {
        if ((rootfs == null) == (image == null)) {
            throw new CliException("run needs exactly one of --rootfs DIR and --image NAME");
        }
        if (image != null) {
            image = ImagesCommand.validName(image);
        }
        if (rootfs != null && args.isEmpty()) {
            throw new CliException("run --rootfs needs a command after the ID: a directory has none of its own");
        }
        if (entrypoint != null && image == null) {
            throw new CliException("--entrypoint needs --image: a rootfs directory has no entrypoint to replace");
        }
        if (image != null && detach) {
            throw new CliException("--detach needs --rootfs: an image run's output is read by this process, and"
                    + " would be cut when it exits");
        }
        if (rootfs != null && !Files.isDirectory(rootfs)) {
            throw new CliException("rootfs " + rootfs + (Files.exists(rootfs) ? " is not a directory"
                    : " does not exist"));
        }
        String kind = shim != null ? shim : detach ? "remote" : "local";
        if (!kind.equals("local") && !kind.equals("remote")) {
            throw new CliException("--shim must be local or remote, not " + kind);
        }
        if (detach && remove) {
            throw new CliException("--rm and --detach do not go together: a detached container outlives this run;"
                    + " delete it later with delete ID");
        }
        if (detach && kind.equals("local")) {
            throw new CliException("--detach needs --shim remote: a local shim lives in this process and would die"
                    + " with it");
        }
        if (detach && process.interactive) {
            throw new CliException("-i and --detach do not go together: nobody would be left to forward stdin");
        }
        if (detach && process.tty) {
            throw new CliException("-t and --detach do not go together: a detached container's output goes to its"
                    + " log, and nobody would be left at its terminal");
        }
        return kind;
    }

    /** The spec the options describe. */
    private Spec spec(CliContext context, List<String> args) {
        Spec.Builder spec = Spec.builder().args(args.toArray(String[]::new));
        for (Map.Entry<String, String> variable : process.environment(context.environment).entrySet()) {
            spec.env(variable.getKey(), variable.getValue());
        }
        if (process.cwd != null) {
            spec.cwd(process.cwd);
        }
        if (process.user != null) {
            int[] ids = Users.resolve(process.user, rootfs);
            spec.user(ids[0], ids[1]);
        }
        if (hostname != null) {
            spec.hostname(hostname);
        }
        spec.terminal(process.tty);
        spec.readonlyRootfs(readOnly);
        mounts.forEach(spec::addMount);
        if (memory != null) {
            spec.memoryLimit(memory);
        }
        if (cpus != null) {
            spec.cpus(cpus);
        }
        if (pidsLimit != null) {
            spec.pidsLimit(pidsLimit);
        }
        return spec.build();
    }

    /**
     * A run from an image goes through {@link RuntimePlugin#run}, which leases the image, merges its config into
     * the spec and mounts its layers. As a directory run, the container is this CLI's until it exits; without
     * {@code --rm} its bundle stays, stopped, until {@code delete ID} (and holds the image until then).
     */
    private int runImage(CliContext context, Spec spec, ShimOpt opt, Foreground foreground, StopSignals signals) {
        RuntimePlugin runtime = context.runtime();
        Image found = runtime.images().get(image).block(CliContext.TIMEOUT);
        RunRequest request = RunRequest.of(context.namespace(), id, spec, found)
                .withShim(opt)
                .withOutputBuffer(IMAGE_OUTPUT_BUFFER);
        if (foreground.stdin() != null) {
            request = request.withStdin(foreground.stdin());
        }
        if (foreground instanceof TerminalForeground terminal) {
            request = request.withTerminal(terminal.size());
        }
        if (entrypoint != null) {
            // docker run --entrypoint "" clears the image's entrypoint.
            request = request.withEntrypoint(entrypoint.isEmpty() ? new String[0] : new String[] {entrypoint});
        }
        Container container = runtime.run(request).block(CliContext.TIMEOUT);
        if (signals.stopRequested()) {
            container.release().block(CliContext.TIMEOUT);
            return signals.exitStatus();
        }
        int status;
        try {
            status = foreground.attach(container, signals);
        } catch (RuntimeException e) {
            container.release().block(CliContext.TIMEOUT);
            if (signals.stopRequested()) {
                return signals.exitStatus();
            }
            throw e;
        }
        long dropped = container.droppedStdoutBytes() + container.droppedStderrBytes();
        if (dropped > 0) {
            context.err.print("shimmer: the terminal fell behind the output of " + id + " by more than "
                    + IMAGE_OUTPUT_BUFFER + " bytes; " + dropped + " bytes were dropped" + foreground.lineEnd());
        }
        if (remove) {
            container.release().block(CliContext.TIMEOUT);
            return status;
        }
        try {
            container.shim().delete().block(CliContext.TIMEOUT);
            container.shim().shutdown().block(CliContext.TIMEOUT);
        } catch (RuntimeException e) {
            // Our terminal may still be raw (the foreground is closed after this): a line end that returns.
            context.err.print("shimmer: cleaning up " + id + " after its exit failed (" + ExitCodes.message(e)
                    + "); removed it by force" + foreground.lineEnd());
            container.release().block(CliContext.TIMEOUT);
        }
        return status;
    }

    /**
     * The container is this CLI's until it exits or is detached: a stop signal reaches it, and whatever happens
     * (an error, a signal before it even started) its task, shim and, with {@code --rm}, its bundle go.
     */
    private int runDirectory(CliContext context, Spec spec, ShimOpt opt, Foreground foreground,
            StopSignals signals) {
        RuntimePlugin runtime = context.runtime();
        Bundle bundle = runtime.create(context.namespace(), id, spec).block(CliContext.TIMEOUT);
        // The overlay root, with a stdio chosen below.
        CreateOptions root;
        ShimClient client;
        try {
            root = new CreateOptions(List.of(WritableRoot.overlay(rootfs, bundle.workDir())), Stdio.none());
            client = bundle.newShimClient(opt, RuncOptions.defaults()).block(CliContext.TIMEOUT);
        } catch (IOException | RuntimeException e) {
            runtime.forceDelete(context.namespace(), id).block(CliContext.TIMEOUT);
            throw e instanceof IOException io ? new UncheckedIOException(io) : (RuntimeException) e;
        }
        if (detach) {
            Path log = bundle.workDir().resolve("console.log");
            try {
                client.create(new CreateOptions(root.rootfs(), Stdio.files(log, log))).block(CliContext.TIMEOUT);
                client.start().block(CliContext.TIMEOUT);
            } catch (RuntimeException e) {
                abandon(context, client);
                throw e;
            }
            if (signals.stopRequested()) {
                abandon(context, client);
                return signals.exitStatus();
            }
            client.close().block(CliContext.TIMEOUT);
            context.out.println(id);
            return 0;
        }
        ProcessIo io;
        try {
            io = client.create(new CreateOptions(root.rootfs(), foreground.stdio())).block(CliContext.TIMEOUT);
        } catch (RuntimeException e) {
            abandon(context, client);
            throw e;
        }
        if (signals.stopRequested()) {
            abandon(context, client);
            return signals.exitStatus();
        }
        int status;
        try {
            status = foreground.attach(client, io, "", signals);
        } catch (RuntimeException e) {
            abandon(context, client);
            if (signals.stopRequested()) {
                // The signal reached runc too (it shares the terminal's process group): stopped, not failed.
                return signals.exitStatus();
            }
            throw e;
        }
        try {
            client.delete().block(CliContext.TIMEOUT);
            client.shutdown().block(CliContext.TIMEOUT);
        } catch (RuntimeException e) {
            // A second signal during the cleanup (it reaches runc too), or a failed step: the container has
            // exited, so what is left of it goes the forced way rather than staying behind.
            // Our terminal may still be raw (the foreground is closed after this): a line end that returns.
            context.err.print("shimmer: cleaning up " + id + " after its exit failed (" + ExitCodes.message(e)
                    + "); removed it by force" + foreground.lineEnd());
            abandon(context, client);
            return status;
        }
        if (remove) {
            runtime.delete(context.namespace(), id).block(CliContext.TIMEOUT);
        }
        return status;
    }

    /**
     * A run that failed or was stopped midway: remove its task (if any) and its shim, then force the rest away, so
     * that nothing of it is left whatever step it reached.
     */
    private void abandon(CliContext context, ShimClient client) {
        client.kill(9, true).onErrorResume(e -> Mono.empty())
                .then(client.delete().onErrorResume(e -> Mono.empty()))
                .then(client.shutdown().onErrorResume(e -> Mono.empty()))
                .then(context.runtime().forceDelete(context.namespace(), id))
                .block(CliContext.TIMEOUT);
    }
}
