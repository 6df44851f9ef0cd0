package org.shimmer.runtime.linux.shim.remote;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.linux.sys.SpawnedProcess;
import org.shimmer.runtime.shim.ShimException;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;

/**
 * The shim binary's command line, as containerd runs it: {@code <shim> -namespace NS -address A -publish-binary B
 * -id ID [-debug] start|delete}, with the bundle as working directory.
 */
final class ShimCommand {

    /** How long {@code start} or {@code delete} may take before the process is killed. */
    static final Duration TIMEOUT = Duration.ofSeconds(10);

    /** What a finished command printed. */
    record Result(int exitCode, byte[] stdout, String stderr) {}

    private final String binary;
    private final String namespace;
    private final String id;
    private final String daemonAddress;
    private final boolean debug;
    private final Path bundle;

    ShimCommand(String binary, String namespace, String id, String daemonAddress, boolean debug, Path bundle) {
        this.binary = binary;
        this.namespace = namespace;
        this.id = id;
        this.daemonAddress = daemonAddress;
        this.debug = debug;
        this.bundle = bundle;
    }

    /**
     * Runs {@code start}: the shim re-executes itself as the daemon, which keeps running. {@code stdin} is the
     * encoded runc options; it must reach end of file, or {@code start} never returns. {@code tempDir} is the
     * shim's temporary directory.
     *
     * <p>An io thread waits for its exit. Not {@link Process#onExit()}: the JDK completes that on the common
     * fork-join pool, which a host may have busy (a CLI run in {@code CompletableFuture.supplyAsync} on a 2-core
     * machine, whose common pool has one thread, waited there for its own shim start until the timeout). Cancelled
     * or timed out, the command is killed.
     */
    Mono<Result> start(byte[] stdin, Path eventsSocket, Path tempDir, Scheduler io) {
        return Mono.defer(() -> {
            List<String> command = command("start");
            // TMPDIR: the shim writes each exec's process spec to a temporary file (runc-process*) and removes it
            // after runc exec; a shim killed meanwhile (a forced delete during an exec) left it in /tmp for good.
            // In the bundle's work directory it goes with the bundle. The shim passes it on to its daemon.
            Map<String, String> environment = Map.of("TTRPC_ADDRESS", eventsSocket.toString(),
                    "TMPDIR", tempDir.toString());
            // A cancel while the launch runs: usingWhen then drops the process the launch hands on, with no
            // cleanup (review: a zombie and three descriptors for good). Set, then checked, on both sides: whichever
            // comes second kills it.
            AtomicReference<Process> launched = new AtomicReference<>();
            AtomicBoolean cancelled = new AtomicBoolean();
            Mono<Process> launching = Mono.fromCallable(() -> launch(command, environment, stdin, process -> {
                        // Before stdin is written: a cancel while the write blocks kills it at once.
                        launched.set(process);
                        if (cancelled.get()) {
                            kill(process);
                        }
                    }))
                    .subscribeOn(io)
                    .doOnCancel(() -> {
                        cancelled.set(true);
                        Process process = launched.get();
                        if (process != null) {
                            kill(process);
                        }
                    });
            return Mono.usingWhen(
                    launching,
                    process -> Mono.fromCallable(() -> {
                                if (!process.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                                    throw timedOut("start");
                                }
                                return result(process);
                            }).subscribeOn(io),
                    process -> Mono.fromRunnable(() -> closeStreams(process)),
                    (process, error) -> Mono.fromRunnable(() -> kill(process)),
                    process -> Mono.fromRunnable(() -> kill(process)));
        });
    }

    /**
     * Runs {@code delete}: kills and deletes the runc container, unmounts the rootfs, and prints a raw
     * {@code DeleteResponse} (always exit status 137: it cannot know the real one).
     */
    Result delete() {
        return run(command("delete"), new byte[0]);
    }

    private List<String> command(String action) {
        List<String> command = new ArrayList<>(List.of(binary, "-namespace", namespace, "-address", daemonAddress,
                "-publish-binary", binary, "-id", id, "-bundle", bundle.toString()));
        if (debug) {
            command.add("-debug");
        }
        command.add(action);
        return command;
    }

    private Result run(List<String> command, byte[] stdin) {
        Process process = launch(command, Map.of(), stdin, started -> {});
        try {
            // What the shim prints is far smaller than a pipe, so it cannot block on output before exiting.
            if (!process.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                kill(process);
                throw timedOut(command.getLast());
            }
            return result(process);
        } catch (InterruptedException e) {
            kill(process);
            Thread.currentThread().interrupt();
            throw new ShimException("interrupted while running shim " + binary, e);
        } finally {
            closeStreams(process);
        }
    }

    /**
     * Starts the command in the bundle, {@code environment} over ours, and hands it {@code stdin}, then end of file;
     * blocking. Spawned from this thread (posix_spawn), not through the JDK's helper process (issue 14).
     */
    private Process launch(List<String> command, Map<String, String> environment, byte[] stdin,
            Consumer<Process> started) {
        Process process;
        try {
            process = SpawnedProcess.start(command, bundle, environment, ProcessBuilder.Redirect.PIPE,
                    ProcessBuilder.Redirect.PIPE, ProcessBuilder.Redirect.PIPE);
        } catch (IOException e) {
            throw new ShimException("cannot run shim binary " + binary + ": " + e.getMessage(), e);
        }
        started.accept(process);
        try (OutputStream in = process.getOutputStream()) {
            in.write(stdin);
        } catch (IOException stoppedReading) {
            // It exited (or closed stdin) before reading the options: its status and output say why.
        }
        return process;
    }

    /** What the exited command printed. What the shim prints is far smaller than a pipe: it never blocked on it. */
    private static Result result(Process exited) {
        return new Result(exited.exitValue(), readAll(exited.getInputStream()),
                new String(readAll(exited.getErrorStream()), StandardCharsets.UTF_8).strip());
    }

    private ShimException timedOut(String action) {
        return new ShimException(ErrorCode.DEADLINE_EXCEEDED, "shim " + action + " for "
                + namespace + "/" + id + " did not finish within " + TIMEOUT);
    }

    private static void kill(Process process) {
        process.destroyForcibly();
        closeStreams(process);
    }

    private static void closeStreams(Process process) {
        for (Closeable stream : List.of(process.getInputStream(), process.getErrorStream())) {
            try {
                stream.close();
            } catch (IOException ignored) {
                // A pipe end: closing it cannot lose anything we still need.
            }
        }
    }

    private static byte[] readAll(InputStream in) {
        try {
            return in.readAllBytes();
        } catch (IOException e) {
            return new byte[0];
        }
    }
}
