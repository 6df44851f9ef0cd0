package org.shimmer.examples.cli;

import java.io.Console;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.lang.reflect.RecordComponent;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeoutException;
import java.util.stream.Stream;
import org.shimmer.examples.host.PluginHost;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.events.InMemoryEventExchange;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import org.shimmer.runtime.spec.Spec;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import reactor.core.scheduler.Schedulers;

/**
 * A {@code ctr}-like command line over the runtime plugin, loaded through PF4J from a plugins directory exactly
 * as a real host loads it. Errors are one line on stderr and a non-zero exit status.
 */
public final class ShimmerCli {

    static final String USAGE = """
            usage: java -jar shimmer.jar [--plugins DIR] [--state-root DIR] [--work-root DIR] [--image-root DIR]
                                         [--namespace NS] COMMAND
              run [--rm] [-d|--detach] [--shim local|remote] [--shim-binary PATH] --rootfs DIR ID -- CMD [ARG...]
              run [--rm] [--shim local|remote] [--shim-binary PATH] --image NAME [--entrypoint WORD] ID [-- CMD...]
              ps
              kill ID [--signal N]
              delete [--force] ID
              exec ID EXEC_ID -- CMD [ARG...]
              images import PATH [--name NAME]
              images ls
              images rm NAME...
              events
              plugins""";

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    /** How long the output of an exited process may take to reach its end before it is cut. */
    private static final Duration DRAIN_TIMEOUT = Duration.ofSeconds(5);
    private static final String PS_FORMAT = "%-24s %-18s %s%n";
    /**
     * What an image run's output may fall behind the terminal, per stream: such a run's output is the plugin's
     * {@link Container}'s, read at once and bounded (a directory run's waits for the terminal instead).
     */
    private static final int IMAGE_OUTPUT_BUFFER = 64 << 20;

    /** A user error: printed as one line, exit status 2 for usage and 1 otherwise. */
    static final class CliException extends RuntimeException {
        final int status;

        CliException(String message, int status) {
            super(message);
            this.status = status;
        }
    }

    private final PrintStream out;
    private final PrintStream err;
    private final boolean terminal;
    private Path pluginsDir = defaultPluginsDir();
    private Path stateRoot = RuntimeConfig.DEFAULT_STATE_ROOT;
    private Path workRoot = RuntimeConfig.DEFAULT_WORK_ROOT;
    private Path imageRoot;
    private String namespace = "default";
    private final InMemoryEventExchange events = new InMemoryEventExchange();

    /** @param terminal whether {@code out} is a terminal, where progress is drawn in place */
    ShimmerCli(PrintStream out, PrintStream err, boolean terminal) {
        this.out = out;
        this.err = err;
        this.terminal = terminal;
    }

    ShimmerCli(PrintStream out, PrintStream err) {
        this(out, err, false);
    }

    public static void main(String[] args) {
        Console console = System.console();
        System.exit(new ShimmerCli(System.out, System.err, console != null && console.isTerminal()).execute(args));
    }

    /** Runs one command line; returns the exit status. */
    int execute(String[] args) {
        Deque<String> rest = new ArrayDeque<>(List.of(args));
        if (rest.contains("--help") || rest.contains("-h") || rest.peekFirst() == null) {
            (rest.isEmpty() ? err : out).println(USAGE);
            return rest.isEmpty() ? 2 : 0;
        }
        try {
            globalOptions(rest);
            if (rest.isEmpty()) {
                throw new CliException(USAGE, 2);
            }
            String command = rest.pop();
            try (PluginHost host = PluginHost.start(pluginsDir)) {
                RuntimePlugin runtime = host.runtime()
                        .withConfig(new RuntimeConfig(stateRoot, workRoot, events, imageRoot));
                return switch (command) {
                    case "run" -> run(runtime, rest);
                    case "ps" -> ps(runtime);
                    case "kill" -> kill(runtime, rest);
                    case "delete" -> delete(runtime, rest);
                    case "exec" -> exec(runtime, rest);
                    case "images" -> new ImageCommands(runtime::images, out, err, terminal, TIMEOUT).execute(rest);
                    case "events" -> events(runtime);
                    case "plugins" -> plugins(host);
                    default -> throw new CliException("unknown command " + command + "\n" + USAGE, 2);
                };
            } finally {
                events.dispose();
            }
        } catch (CliException e) {
            err.println("shimmer: " + e.getMessage());
            return e.status;
        } catch (ShimmerException e) {
            err.println("shimmer: " + e.getMessage());
            return 1;
        } catch (RuntimeException e) {
            err.println("shimmer: " + (e.getMessage() != null ? e.getMessage() : e.toString()));
            return 1;
        }
    }

    private void globalOptions(Deque<String> args) {
        while (!args.isEmpty() && args.peek().startsWith("--")) {
            switch (args.pop()) {
                case "--plugins" -> pluginsDir = Path.of(value(args, "--plugins"));
                case "--state-root" -> stateRoot = Path.of(value(args, "--state-root"));
                case "--work-root" -> workRoot = Path.of(value(args, "--work-root"));
                case "--image-root" -> imageRoot = Path.of(value(args, "--image-root"));
                case "--namespace" -> namespace = value(args, "--namespace");
                case String unknown -> throw new CliException("unknown option " + unknown + "\n" + USAGE, 2);
            }
        }
        if (!Files.isDirectory(pluginsDir)) {
            throw new CliException("plugins directory " + pluginsDir + " does not exist", 1);
        }
    }

    private int run(RuntimePlugin runtime, Deque<String> args) {
        boolean remove = false;
        boolean detach = false;
        String shimKind = "local";
        String shimBinary = "containerd-shim-runc-v2";
        Path rootfs = null;
        String image = null;
        String entrypoint = null;
        while (!args.isEmpty() && args.peek().startsWith("-") && !args.peek().equals("--")) {
            switch (args.pop()) {
                case "--rm" -> remove = true;
                case "-d", "--detach" -> detach = true;
                case "--shim" -> shimKind = value(args, "--shim");
                case "--shim-binary" -> shimBinary = value(args, "--shim-binary");
                case "--rootfs" -> rootfs = Path.of(value(args, "--rootfs"));
                case "--image" -> image = ImageCommands.validName(value(args, "--image"));
                case "--entrypoint" -> entrypoint = value(args, "--entrypoint");
                case String unknown -> throw new CliException("unknown run option " + unknown, 2);
            }
        }
        String id = positional(args, "ID");
        if ((rootfs == null) == (image == null)) {
            throw new CliException("run needs exactly one of --rootfs DIR and --image NAME", 2);
        }
        // An image has a command of its own: CMD, when given, replaces its cmd, as docker run's does.
        List<String> command = image != null && args.isEmpty() ? List.of() : command(image != null, args);
        if (entrypoint != null && image == null) {
            throw new CliException("--entrypoint needs --image: a rootfs directory has no entrypoint to replace", 2);
        }
        if (image != null && detach) {
            throw new CliException("--detach needs --rootfs: an image run's output is read by this process, and"
                    + " would be cut when it exits", 2);
        }
        if (rootfs != null && !Files.isDirectory(rootfs)) {
            throw new CliException("rootfs " + rootfs + " does not exist", 1);
        }
        if (!shimKind.equals("local") && !shimKind.equals("remote")) {
            throw new CliException("--shim must be local or remote, not " + shimKind, 2);
        }
        if (detach && remove) {
            throw new CliException("--rm and --detach do not go together: a detached container outlives this run;"
                    + " delete it later with delete ID", 2);
        }
        if (detach && shimKind.equals("local")) {
            throw new CliException("--detach needs --shim remote: a local shim lives in this process and would die"
                    + " with it", 2);
        }
        requireExecutable("runc", "runc not found on the PATH (apt-get install runc)");
        if (shimKind.equals("remote")) {
            requireExecutable(shimBinary, "shim binary " + shimBinary + " not found");
        }

        try (StopSignals signals = StopSignals.install()) {
            if (image != null) {
                return runImage(runtime, id, command, image, entrypoint, shimOpt(shimKind, shimBinary), remove,
                        signals);
            }
            return run(runtime, id, command, rootfs, shimOpt(shimKind, shimBinary), detach, remove, signals);
        }
    }

    private ShimOpt shimOpt(String shimKind, String shimBinary) {
        return shimKind.equals("local") ? ShimOpt.local()
                : ShimOpt.remote(Path.of(shimBinary), daemonAddress(), null, false, null);
    }

    /**
     * A run from an image goes through {@link RuntimePlugin#run}, which leases the image, merges its config into
     * the spec and mounts its layers. As a directory run, the container is this CLI's until it exits; without
     * {@code --rm} its bundle stays, stopped, until {@code delete ID} (and holds the image until then).
     */
    private int runImage(RuntimePlugin runtime, String id, List<String> command, String imageName,
            String entrypoint, ShimOpt shim, boolean remove, StopSignals signals) {
        Image image = runtime.images().get(imageName).block(TIMEOUT);
        Spec spec = Spec.builder().args(command.toArray(String[]::new)).build();
        RunRequest request = RunRequest.of(namespace, id, spec, image)
                .withShim(shim)
                .withOutputBuffer(IMAGE_OUTPUT_BUFFER);
        if (entrypoint != null) {
            // docker run --entrypoint "" clears the image's entrypoint.
            request = request.withEntrypoint(entrypoint.isEmpty() ? new String[0] : new String[] {entrypoint});
        }
        Container container = runtime.run(request).block(TIMEOUT);
        if (signals.stopRequested()) {
            container.release().block(TIMEOUT);
            return signals.exitStatus();
        }
        int status;
        try {
            status = attach(container, signals);
        } catch (RuntimeException e) {
            container.release().block(TIMEOUT);
            if (signals.stopRequested()) {
                return signals.exitStatus();
            }
            throw e;
        }
        long dropped = container.droppedStdoutBytes() + container.droppedStderrBytes();
        if (dropped > 0) {
            err.println("shimmer: the terminal fell behind the output of " + id + " by more than "
                    + IMAGE_OUTPUT_BUFFER + " bytes; " + dropped + " bytes were dropped");
        }
        if (remove) {
            container.release().block(TIMEOUT);
            return status;
        }
        try {
            container.shim().delete().block(TIMEOUT);
            container.shim().shutdown().block(TIMEOUT);
        } catch (RuntimeException e) {
            err.println("shimmer: cleaning up " + id + " after its exit failed (" + e.getMessage()
                    + "); removed it by force");
            container.release().block(TIMEOUT);
        }
        return status;
    }

    /** {@link #attach(ShimClient, ProcessIo, String, StopSignals)} for a container that already started. */
    private int attach(Container container, StopSignals signals) {
        Sinks.Empty<Void> exited = Sinks.empty();
        CompletableFuture<Void> drained = output(container.stdout(), container.stderr(), exited.asMono(),
                container.id()).toFuture();
        try {
            signals.target(signal -> container.shim().kill(signal, signal == 9).subscribe(done -> {}, e -> {}));
            ExitStatus exit = container.exit().block();
            exited.tryEmitEmpty();
            drained.join();
            return exit.status();
        } finally {
            drained.cancel(false);
        }
    }

    /**
     * The container is this CLI's until it exits or is detached: a stop signal reaches it, and whatever happens
     * (an error, a signal before it even started) its task, shim and, with {@code --rm}, its bundle go.
     */
    private int run(RuntimePlugin runtime, String id, List<String> command, Path rootfs, ShimOpt opt,
            boolean detach, boolean remove, StopSignals signals) {
        Bundle bundle = runtime.create(namespace, id, Spec.builder().args(command.toArray(String[]::new)).build())
                .block(TIMEOUT);
        List<Mount> mounts;
        ShimClient shim;
        try {
            mounts = List.of(WritableRoot.overlay(rootfs, bundle.workDir()));
            shim = bundle.newShimClient(opt, RuncOptions.defaults()).block(TIMEOUT);
        } catch (IOException | RuntimeException e) {
            runtime.forceDelete(namespace, id).block(TIMEOUT);
            throw e instanceof IOException io ? new UncheckedIOException(io) : (RuntimeException) e;
        }
        if (detach) {
            Path log = bundle.workDir().resolve("console.log");
            try {
                shim.create(new CreateOptions(mounts, Stdio.files(log, log))).block(TIMEOUT);
                shim.start().block(TIMEOUT);
            } catch (RuntimeException e) {
                abandon(runtime, shim, id);
                throw e;
            }
            if (signals.stopRequested()) {
                abandon(runtime, shim, id);
                return signals.exitStatus();
            }
            shim.close().block(TIMEOUT);
            out.println(id);
            return 0;
        }
        ProcessIo io;
        try {
            io = shim.create(new CreateOptions(mounts, Stdio.streams(null))).block(TIMEOUT);
        } catch (RuntimeException e) {
            abandon(runtime, shim, id);
            throw e;
        }
        if (signals.stopRequested()) {
            abandon(runtime, shim, id);
            return signals.exitStatus();
        }
        int status;
        try {
            status = attach(shim, io, "", signals);
        } catch (RuntimeException e) {
            abandon(runtime, shim, id);
            if (signals.stopRequested()) {
                // The signal reached runc too (it shares the terminal's process group): stopped, not failed.
                return signals.exitStatus();
            }
            throw e;
        }
        try {
            shim.delete().block(TIMEOUT);
            shim.shutdown().block(TIMEOUT);
        } catch (RuntimeException e) {
            // A second signal during the cleanup (it reaches runc too), or a failed step: the container has
            // exited, so what is left of it goes the forced way rather than staying behind.
            err.println("shimmer: cleaning up " + id + " after its exit failed (" + e.getMessage()
                    + "); removed it by force");
            abandon(runtime, shim, id);
            return status;
        }
        if (remove) {
            runtime.delete(namespace, id).block(TIMEOUT);
        }
        return status;
    }

    /**
     * A run that failed or was stopped midway: remove its task (if any) and its shim, then force the rest away, so
     * that nothing of it is left whatever step it reached.
     */
    private void abandon(RuntimePlugin runtime, ShimClient shim, String id) {
        shim.kill(9, true).onErrorResume(e -> Mono.empty())
                .then(shim.delete().onErrorResume(e -> Mono.empty()))
                .then(shim.shutdown().onErrorResume(e -> Mono.empty()))
                .then(runtime.forceDelete(namespace, id))
                .block(TIMEOUT);
    }

    /**
     * Streams a process's output as it comes, passes stop signals on once it started (see {@link StopSignals}), and
     * returns its exit status once its output reached its end.
     */
    private int attach(ShimClient shim, ProcessIo io, String execId, StopSignals signals) {
        Sinks.Empty<Void> exited = Sinks.empty();
        CompletableFuture<Void> drained = output(io.stdout(), io.stderr(), exited.asMono(), shim.id()).toFuture();
        try {
            shim.start(execId).block(TIMEOUT);
            signals.target(signal -> (execId.isEmpty() ? shim.kill(signal, signal == 9) : shim.kill(execId, signal))
                    .subscribe(done -> {}, e -> {}));
            ExitStatus exit = shim.awaitExit(execId).block();
            exited.tryEmitEmpty();
            drained.join();
            return exit.status();
        } finally {
            // Only on a failure before the exit: after it, the output has ended and this changes nothing.
            drained.cancel(false);
        }
    }

    /**
     * Copies stdout and stderr to ours until both end. The tail of the output may still be on its way when the
     * exit is known (the remote shim answers Wait before it copied the last bytes), so nothing is cut at the exit:
     * only once nothing was written for {@link #DRAIN_TIMEOUT} after it (a background process may hold the pipes
     * open) does the copy stop, and says so. Written off the runtime's poll thread: a slow terminal must
     * not stall it.
     */
    private Mono<Void> output(Flux<byte[]> stdout, Flux<byte[]> stderr, Mono<Void> exited, String id) {
        Mono<Long> silentAfterExit = exited.then(Mono.delay(DRAIN_TIMEOUT));
        Flux<Runnable> writes = Flux.merge(
                stdout.<Runnable>map(bytes -> () -> write(out, bytes)),
                stderr.<Runnable>map(bytes -> () -> write(err, bytes)));
        // The silence is timed after our writes: a chunk queued for a slow terminal is not silence.
        return writes.publishOn(Schedulers.boundedElastic())
                .doOnNext(Runnable::run)
                .timeout(silentAfterExit, written -> silentAfterExit)
                .then()
                .onErrorResume(TimeoutException.class, silent -> {
                    err.println("shimmer: the output of " + id + " was still open " + DRAIN_TIMEOUT.toSeconds()
                            + " s after its exit with nothing written; stopped reading it");
                    return Mono.empty();
                })
                .onErrorResume(failed -> {
                    err.println("shimmer: reading the output of " + id + " failed: " + failed.getMessage());
                    return Mono.empty();
                });
    }

    private static void write(PrintStream to, byte[] bytes) {
        to.write(bytes, 0, bytes.length);
        to.flush();
    }

    /**
     * One line per bundle. A live remote shim is asked for its task; anything else is what the machine shows (see
     * {@link RuntimePlugin#inspect}): a container whose host died reads {@code running (no shim)}.
     */
    private int ps(RuntimePlugin runtime) {
        out.printf(PS_FORMAT, "ID", "STATUS", "PID");
        for (Bundle bundle : runtime.list(namespace).collectList().block(TIMEOUT)) {
            BundleInspection seen = runtime.inspect(namespace, bundle.id()).block(TIMEOUT);
            String status = seen.describe();
            String pid = seen.container().filter(c -> c.pid() != 0).map(c -> Integer.toString(c.pid())).orElse("-");
            Optional<ShimClient> shim = remoteShimAlive(seen) ? connect(bundle) : Optional.empty();
            if (shim.isPresent()) {
                try {
                    TaskState state = shim.get().state().block(TIMEOUT);
                    status = state.status().name().toLowerCase();
                    pid = Integer.toString(state.pid());
                } catch (NotFoundException noTask) {
                    status = "no task";
                } catch (ShimmerException unreachable) {
                    // The shim went away while we asked: what the machine shows stands.
                } finally {
                    shim.get().close().block(TIMEOUT);
                }
            }
            out.printf(PS_FORMAT, bundle.id(), status, pid);
        }
        return 0;
    }

    /** Whether an earlier delete of {@code id} left hidden trees ({@code .<id>.deleting-…}, see the README). */
    private boolean hasLeftovers(String id) {
        String prefix = "." + id + ".deleting-";
        for (Path parent : List.of(stateRoot.resolve(namespace), workRoot.resolve(namespace))) {
            try (Stream<Path> entries = Files.list(parent)) {
                if (entries.anyMatch(entry -> entry.getFileName().toString().startsWith(prefix))) {
                    return true;
                }
            } catch (IOException | UncheckedIOException absent) {
                // No such namespace directory: nothing left there.
            }
        }
        return false;
    }

    private static boolean remoteShimAlive(BundleInspection seen) {
        return seen.shim().filter(s -> s.kind() == BundleInspection.ShimKind.REMOTE && s.alive()).isPresent();
    }

    private int kill(RuntimePlugin runtime, Deque<String> args) {
        String id = positional(args, "ID");
        int signal = 15;
        if (!args.isEmpty() && args.peek().equals("--signal")) {
            args.pop();
            signal = Integer.parseInt(value(args, "--signal"));
        }
        ShimClient shim = requireShim(runtime, id);
        try {
            shim.kill(signal, false).block(TIMEOUT);
        } finally {
            shim.close().block(TIMEOUT);
        }
        return 0;
    }

    /**
     * Without {@code --force}: deletes a stopped task through its live remote shim, shuts the shim down and
     * deletes the bundle; anything still alive is refused with a hint. With it: {@link RuntimePlugin#forceDelete}.
     */
    private int delete(RuntimePlugin runtime, Deque<String> args) {
        boolean force = false;
        if (!args.isEmpty() && args.peek().equals("--force")) {
            args.pop();
            force = true;
        }
        String id = positional(args, "ID");
        if (!args.isEmpty() && args.peek().equals("--force")) {
            args.pop();
            force = true;
        }
        BundleInspection seen = runtime.inspect(namespace, id).block(TIMEOUT);
        if (!seen.present() && !seen.inUse()) {
            // Finishes what an earlier delete left under a hidden name, if anything: that is a delete done.
            boolean leftovers = hasLeftovers(id);
            runtime.delete(namespace, id).block(TIMEOUT);
            if (leftovers) {
                return 0;
            }
            throw new NotFoundException("bundle " + namespace + "/" + id + " not found");
        }
        if (force) {
            runtime.forceDelete(namespace, id).block(TIMEOUT);
            return 0;
        }
        Optional<ShimClient> shim = remoteShimAlive(seen) && seen.complete()
                ? connect(runtime.load(namespace, id).block(TIMEOUT)) : Optional.empty();
        if (shim.isPresent()) {
            try {
                TaskState state = shim.get().state().block(TIMEOUT);
                if (state.status() != TaskState.Status.STOPPED && state.status() != TaskState.Status.CREATED) {
                    shim.get().close().block(TIMEOUT);
                    throw new CliException("container " + id + " is " + state.status().name().toLowerCase()
                            + "; kill it first, or use delete --force", 1);
                }
                shim.get().delete().block(TIMEOUT);
            } catch (NotFoundException noTask) {
                // The task is gone already; only the shim and the bundle remain.
            }
            shim.get().shutdown().block(TIMEOUT);
        } else if (seen.inUse()) {
            throw new CliException("container " + id + " is " + seen.describe() + "; use delete --force", 1);
        }
        runtime.delete(namespace, id).block(TIMEOUT);
        return 0;
    }

    private int exec(RuntimePlugin runtime, Deque<String> args) {
        String id = positional(args, "ID");
        String execId = positional(args, "EXEC_ID");
        List<String> command = command(args);
        ShimClient shim = requireShim(runtime, id);
        try {
            ProcessIo io = shim.exec(execId, Spec.Process.builder().args(command).build(), Stdio.streams(null))
                    .block(TIMEOUT);
            int status;
            try (StopSignals signals = StopSignals.install()) {
                status = attach(shim, io, execId, signals);
            }
            shim.delete(execId).block(TIMEOUT);
            return status;
        } finally {
            shim.close().block(TIMEOUT);
        }
    }

    private int events(RuntimePlugin runtime) {
        runtime.events().doOnNext(envelope -> out.printf("%s %s %s %s%n", envelope.timestamp(),
                envelope.namespace(), envelope.topic(), json(envelope.event()))).blockLast();
        return 0;
    }

    private int plugins(PluginHost host) {
        host.started().forEach(plugin -> out.printf("%s %s %s%n", plugin.getPluginId(),
                plugin.getDescriptor().getVersion(), plugin.getPluginPath()));
        return 0;
    }

    private ShimClient requireShim(RuntimePlugin runtime, String id) {
        Bundle bundle = runtime.load(namespace, id).block(TIMEOUT);
        return connect(bundle).orElseThrow(() -> new CliException("container " + id
                + " has no running shim (only containers run with --shim remote outlive the CLI)", 1));
    }

    private Optional<ShimClient> connect(Bundle bundle) {
        if (!Files.exists(bundle.workDir().resolve("shim.json"))) {
            return Optional.empty();
        }
        return Optional.ofNullable(bundle.newShimClient(ShimOpt.connect(), RuncOptions.defaults())
                .onErrorResume(error -> Mono.empty()).block(TIMEOUT));
    }

    private String daemonAddress() {
        return "shimmer-cli:" + stateRoot.toAbsolutePath();
    }

    private static String positional(Deque<String> args, String name) {
        if (args.isEmpty() || args.peek().equals("--")) {
            throw new CliException("missing " + name + "\n" + USAGE, 2);
        }
        return args.pop();
    }

    private static List<String> command(Deque<String> args) {
        return command(false, args);
    }

    /** The words after {@code --}: at least one unless {@code mayBeEmpty}. */
    private static List<String> command(boolean mayBeEmpty, Deque<String> args) {
        if (args.isEmpty() || !args.pop().equals("--") || args.isEmpty() && !mayBeEmpty) {
            throw new CliException("missing -- CMD [ARG...]", 2);
        }
        return new ArrayList<>(args);
    }

    static String value(Deque<String> args, String option) {
        if (args.isEmpty()) {
            throw new CliException(option + " needs a value", 2);
        }
        return args.pop();
    }

    private static void requireExecutable(String name, String message) {
        if (name.contains("/")) {
            if (!Files.isExecutable(Path.of(name))) {
                throw new CliException(message, 1);
            }
            return;
        }
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (Files.isExecutable(Path.of(dir, name))) {
                return;
            }
        }
        throw new CliException(message, 1);
    }

    /** A task event as JSON: the record's components, in order. */
    static String json(Object event) {
        if (!(event instanceof Record record)) {
            return quote(String.valueOf(event));
        }
        StringBuilder json = new StringBuilder("{");
        for (RecordComponent component : record.getClass().getRecordComponents()) {
            try {
                Object value = component.getAccessor().invoke(record);
                if (json.length() > 1) {
                    json.append(", ");
                }
                json.append(quote(component.getName())).append(": ").append(value instanceof Number n ? n
                        : value instanceof Record nested ? json(nested) : quote(String.valueOf(value)));
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        }
        return json.append('}').toString();
    }

    private static String quote(String value) {
        return '"' + value.replace("\\", "\\\\").replace("\"", "\\\"") + '"';
    }

    private static Path defaultPluginsDir() {
        try {
            Path jar = Path.of(ShimmerCli.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            return jar.getParent().resolve("plugins");
        } catch (URISyntaxException | RuntimeException e) {
            return Path.of("plugins");
        }
    }
}
