package org.shimmer.runtime.linux.shim.local;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.linux.poll.ExitMonitor;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.runc.Runc;
import org.shimmer.runtime.linux.shim.ProcessStdio;
import org.shimmer.runtime.linux.shim.TaskProcess;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Mono;
import reactor.core.publisher.SignalType;

/**
 * Launches the processes of one local container with runc and hands them to the exit monitor; knows the files a
 * launch leaves in the work directory and how to undo a create.
 *
 * <p>Invariant: every launch holds an {@link ExitMonitor.Launch} from before runc runs until the new pid is watched
 * (or the launch failed), so orphan reaping never takes the zombie of a process whose pid we are about to learn.
 */
final class LocalLauncher {

    private static final Logger log = LoggerFactory.getLogger(LocalLauncher.class);
    /** An exec's spec ({@code exec-ID.json}), or the pid file runc writes for it (and its partial one). */
    private static final Pattern EXEC_FILE = Pattern.compile("\\.?exec-.+\\.(json|pid)");

    private final Bundle bundle;
    private final Runc runc;
    private final ExitMonitor monitor;
    private final RuntimeResources resources;

    LocalLauncher(Bundle bundle, Runc runc, ExitMonitor monitor, RuntimeResources resources) {
        this.bundle = bundle;
        this.runc = runc;
        this.monitor = monitor;
        this.resources = resources;
    }

    /** What a create made so far beyond its files, so that its undo removes exactly that. */
    static final class Made {
        volatile boolean runcCreateRan;
    }

    /** Mounts the rootfs of a create, if it has one. Blocking: the caller's io task, with its other preparations. */
    void mountRootfs(CreateOptions options) throws IOException {
        if (!options.rootfs().isEmpty()) {
            RootfsMounts.mount(options.rootfs(), bundle.rootfs(), bundle.workDir());
        }
    }

    /**
     * Runs {@code runc create} and watches init, whose streams are prepared and rootfs mounted
     * ({@link #mountRootfs}); records it for a reload; the init pid.
     */
    Mono<Integer> create(TaskProcess init, Made made) {
        return launch(init, () -> {
            made.runcCreateRan = true;
            // runc refused to create over a container that is there: not ours to delete when undoing.
            return runc.create(bundle.id(), bundle.workDir().resolve("init.pid"), redirects(init.stdio()),
                            consoleSocket(init))
                    .doOnError(error -> made.runcCreateRan = !String.valueOf(error.getMessage())
                            .contains("already exists"));
        }, pid -> LocalRecord.created(pid).write(bundle.workDir()));
    }

    /**
     * Starts a created process: runc's start for init (in the JVM when runc's layout allows), {@code runc exec}
     * (watched) for an exec; its pid. An init's start is not recorded: runc's {@code exec.fifo} says it (see
     * {@link #startedByRunc}), as it does for runc itself; rewriting the record cost a file write per start.
     */
    Mono<Integer> start(TaskProcess process) {
        if (process.execId().isEmpty()) {
            return runc.start(bundle.id(), process.pid()).thenReturn(process.pid());
        }
        return launch(process, () -> runc.exec(bundle.id(), execSpec(process.execId()), bundle.workDir().resolve(
                "exec-" + process.execId() + ".pid"), redirects(process.stdio()), consoleSocket(process)), pid -> {});
    }

    private static Path consoleSocket(TaskProcess process) {
        return process.stdio() != null ? process.stdio().consoleSocket() : null;
    }

    /** What a launch does once its process is watched, on the same io thread. */
    @FunctionalInterface
    private interface Launched {
        void accept(int pid) throws IOException;
    }

    private Mono<Integer> launch(TaskProcess process, Callable<Mono<Integer>> runcLaunch, Launched then) {
        return Mono.usingWhen(
                Mono.fromSupplier(monitor::launch),
                // The launch ends (the console socket goes) only once a terminal's master was taken from it.
                launch -> Mono.fromCallable(() -> {
                            process.beginLaunch();
                            return runcLaunch.call();
                        }).flatMap(started -> started)
                        .flatMap(pid -> onRuncsThread(() -> {
                            process.pid(pid);
                            monitor.watch(pid).subscribe(process::exited, process::unwatched);
                            takeConsole(process, pid);
                            then.accept(pid);
                            return pid;
                        }))
                        .doFinally(signal -> {
                            if (signal == SignalType.ON_ERROR) {
                                process.launchFailed();
                            } else {
                                process.launched();
                            }
                        }),
                launch -> Mono.fromRunnable(launch::close),
                (launch, error) -> Mono.fromRunnable(launch::close),
                launch -> Mono.fromRunnable(launch::close));
    }

    /**
     * Takes the terminal runc made for {@code process}, if it has one. A process whose terminal did not arrive is
     * killed: nobody could ever type into it or read it.
     */
    private void takeConsole(TaskProcess process, int pid) throws IOException {
        if (process.stdio() == null) {
            return;
        }
        try {
            process.stdio().takeConsole();
        } catch (IOException | RuntimeException e) {
            try {
                monitor.signal(pid, 9);
            } catch (IOException notSignalled) {
                e.addSuppressed(notSignalled);
            }
            throw e;
        }
    }

    /**
     * Undoes a create that failed or that nobody took: the runc container it made (never one that was there
     * before: runc refused to create over it) and the mounts; the streams are the caller's. Blocking parts on io.
     */
    Mono<Void> undoCreate(TaskProcess init, Made made) {
        Mono<Void> container = made.runcCreateRan ? deleteContainer(init, true).onErrorResume(error -> Mono.empty())
                : Mono.empty();
        return container.then(blocking(() -> {
            RootfsMounts.unmount(bundle.rootfs(), bundle.workDir());
            LocalRecord.remove(bundle.workDir());
            removePidFile("init.pid");
            return true;
        })).then();
    }

    /**
     * {@code runc delete} of the container; one never started ({@code neverStarted}) is ended first. Its init is
     * killed through its pidfd and its exit awaited, then runc deletes a stopped container: {@code runc delete
     * --force} of a created one polls every 100 ms until the kill shows, the most of a short container's delete.
     * When runc no longer has the container (checkpointed with exit, deleted by someone else), what is left is ours
     * to end, and the task can still be deleted (issue 10 review: it never could).
     */
    Mono<Void> deleteContainer(TaskProcess init, boolean neverStarted) {
        Mono<Void> ended = neverStarted && init.pid() != 0 && init.exited().isEmpty()
                ? blocking(() -> monitor.signal(init.pid(), 9)).then(init.awaitExit()
                        .timeout(TaskProcess.DRAIN_TIMEOUT, Mono.empty(), resources.io())).then()
                : Mono.empty();
        // A started init that exited and was reaped is a stopped container, which runc's destroy may spare a Go
        // process for; one never started still has runc's exec FIFO and goes through runc.
        return ended.then(Mono.defer(() -> !neverStarted && init.exited().isPresent() ? runc.deleteStopped(bundle.id())
                        : runc.delete(bundle.id(), init.exited().isEmpty())))
                .onErrorResume(error -> String.valueOf(error.getMessage()).contains("does not exist"),
                        gone -> blocking(() -> init.exited().isPresent() || init.pid() == 0
                                || monitor.signal(init.pid(), 9)).then());
    }

    /**
     * Whether a recovered container was started: its runc state directory no longer holds {@code exec.fifo}, which
     * every start removes (runc's own once it read init's byte, ours in the JVM before init may run), and which is
     * how runc itself tells a created container from a running one. A record written as started (by an earlier
     * version) is too.
     * Blocking.
     */
    boolean startedByRunc(LocalRecord record) {
        return record.started() || !Files.exists(runc.root().resolve(bundle.id()).resolve("exec.fifo"),
                LinkOption.NOFOLLOW_LINKS);
    }

    /**
     * Whether runc calls the bundle's container paused: a runtime that stopped while it was took it for running
     * after a reload, and refused its resume ("it is running"). Unreadable counts as not paused, runc's pause or
     * resume then says what it is. Blocking.
     */
    boolean pausedByRunc() {
        try {
            return runc.paused(bundle.id());
        } catch (IOException | RuntimeException unreadable) {
            log.debug("cannot tell whether {} is paused", bundle.id(), unreadable);
            return false;
        }
    }

    /** The init runc records for the bundle's container when no {@link LocalRecord} names one. Blocking. */
    Optional<LocalRecord> unrecordedInit() {
        return runc.recordedInitOfThisBundle(bundle.id()).map(init -> new LocalRecord(init.pid(), false, 0, 0));
    }

    /** Writes the spec of a reserved exec. Blocking. */
    void writeExecSpec(String execId, byte[] spec) throws IOException {
        Files.write(execSpec(execId), spec);
    }

    /** Removes the files of an exec: its spec and pid file. */
    Mono<Void> removeExec(String execId) {
        return blocking(() -> {
            removeExecFiles(execId);
            return true;
        }).then();
    }

    /**
     * Watches an init found on disk after a reload. One that exited and was reaped elsewhere (the JVM that was its
     * parent is gone) has lost its status: 137, as containerd reports it. Returns whether it was there to watch.
     *
     * <p>The pid is watched only while it names the init runc recorded (the pid and start time in its
     * {@code state.json}): a pid found on disk may have been given to another process since the init ended, and
     * a host restarted after that once watched and signalled that process as the container's init (a kill of the
     * task ended an unrelated program). A container runc no longer has has no init left to watch either.
     */
    boolean watchRecovered(TaskProcess init) {
        try {
            Runc.Init recorded = runc.recordedInit(bundle.id())
                    .filter(found -> found.pid() == init.pid())
                    .orElseThrow(() -> new IOException("runc records no init of pid " + init.pid()));
            monitor.watchStartedAt(init.pid(), recorded.startTicks()).subscribe(init::exited, init::unwatched);
            return true;
        } catch (IOException gone) {
            log.warn("local {} (pid {}) ended while no runtime watched it ({}); reporting exit 137", init.name(),
                    init.pid(), gone.getMessage());
            init.exited(new ExitStatus(init.pid(), 137, Instant.now()));
            return false;
        }
    }

    /** Removes the files of an exec: its spec and pid file. Blocking. */
    void removeExecFiles(String execId) throws IOException {
        Files.deleteIfExists(execSpec(execId));
        removePidFile("exec-" + execId + ".pid");
    }

    /**
     * Removes the specs and pid files of execs this client never knew, of an init it recovered (a runtime before a
     * reload made them, and forgot them): they went with their container, and stayed until the bundle was
     * deleted. Only regular files named as an exec's, never following a link. Blocking.
     */
    private void removeUnknownExecsFiles() throws IOException {
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(bundle.workDir(),
                entry -> EXEC_FILE.matcher(entry.getFileName().toString()).matches())) {
            for (Path entry : entries) {
                if (Files.isRegularFile(entry, LinkOption.NOFOLLOW_LINKS)) {
                    Files.deleteIfExists(entry);
                }
            }
        }
    }

    /**
     * Removes a pid file runc wrote, and the partial one it leaves when the write failed (runc writes
     * {@code .<name>} and renames it; a full disk left that file behind). Blocking.
     */
    private void removePidFile(String name) throws IOException {
        Files.deleteIfExists(bundle.workDir().resolve(name));
        Files.deleteIfExists(bundle.workDir().resolve("." + name));
    }

    /**
     * Signals a started process through its pidfd; not found once it finished, a failed precondition before it
     * started (an exec not yet started has no process: containerd's runc shim answers the same). Blocking.
     */
    boolean signal(TaskProcess process, int signal) throws IOException {
        if (process.pid() == 0 && process.exited().isEmpty()) {
            throw new FailedPreconditionException("process not started: failed precondition");
        }
        if (process.pid() == 0 || process.exited().isPresent() || !monitor.signal(process.pid(), signal)) {
            throw new NotFoundException("process already finished: not found");
        }
        return true;
    }

    /**
     * After init's delete: the execs never deleted (they go with their container), the mounts, the record and the
     * FIFOs no process of this client owns (those of processes a runtime before a reload started; their streams
     * died with it). Only FIFOs, never following a link. Blocking.
     */
    void removeContainerFiles(List<TaskProcess> execs, boolean recovered) throws IOException {
        for (TaskProcess exec : execs) {
            exec.release();
            removeExecFiles(exec.execId());
        }
        if (recovered) {
            removeUnknownExecsFiles();
        }
        RootfsMounts.unmount(bundle.rootfs(), bundle.workDir());
        LocalRecord.remove(bundle.workDir());
        removePidFile("init.pid");
        ProcessStdio.removeAllFifos(ioDir());
    }

    private Runc.Stdio redirects(ProcessStdio stdio) {
        if (stdio == null) {
            return Runc.Stdio.NULL;
        }
        ProcessBuilder.Redirect in = stdio.stdin().isEmpty() ? Runc.Stdio.NULL.in()
                : ProcessBuilder.Redirect.from(Path.of(stdio.stdin()).toFile());
        return new Runc.Stdio(in, output(stdio, stdio.stdout()), output(stdio, stdio.stderr()));
    }

    private static ProcessBuilder.Redirect output(ProcessStdio stdio, String path) {
        if (path.isEmpty()) {
            return ProcessBuilder.Redirect.DISCARD;
        }
        return stdio.isFiles() ? ProcessBuilder.Redirect.appendTo(Path.of(path).toFile())
                : ProcessBuilder.Redirect.to(Path.of(path).toFile());
    }

    private Path execSpec(String execId) {
        return bundle.workDir().resolve("exec-" + execId + ".json");
    }

    private Path ioDir() {
        return bundle.workDir().resolve("io");
    }

    /**
     * Blocking work after a runc step, run where that step signalled: {@link Runc} signals on an io thread, so
     * this is the io scheduler without another hop to it.
     */
    private static <T> Mono<T> onRuncsThread(Callable<T> work) {
        return Mono.fromCallable(work);
    }

    private <T> Mono<T> blocking(Callable<T> work) {
        return Mono.fromCallable(work).subscribeOn(resources.io());
    }
}
