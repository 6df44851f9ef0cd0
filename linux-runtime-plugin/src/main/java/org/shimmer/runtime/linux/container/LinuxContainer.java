package org.shimmer.runtime.linux.container;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.ExecProcess;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.ResourceExhaustedException;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.bundle.StorageErrors;
import org.shimmer.runtime.linux.shim.Operations;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.shimmer.runtime.shim.ContainerStats;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimException;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TerminalSize;
import org.shimmer.runtime.spec.Spec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.Disposable;
import reactor.core.Disposables;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import reactor.core.scheduler.Scheduler;
import reactor.util.retry.Retry;

/**
 * A container made by {@link ContainerRunner}: its bundle, then its shim, its task and its start, each recorded as
 * it is made, so that {@link #release()} undoes exactly what exists whatever step the run reached.
 */
final class LinuxContainer implements Container {

    private static final Logger log = LoggerFactory.getLogger(LinuxContainer.class);
    static final int SIGKILL = 9;
    /** How long a release (of a container or an exec) waits for the exit after SIGKILL before going on. */
    static final Duration EXIT_AFTER_KILL = Duration.ofSeconds(10);
    /**
     * The longest one call of a release to the shim (kill, delete, shutdown) may take: a SIGSTOPped remote shim
     * keeps its connection and never answers, and a release waiting for it never ended, nor any later run of the
     * id. Once a call timed out the shim is taken for hung: the calls after it are skipped for a delete by force,
     * which kills the shim by its pidfd.
     */
    static final Duration STEP_BOUND = Duration.ofSeconds(10);
    /** The longest the delete by force may take, for a release to end even with a hung runc. */
    static final Duration FORCE_DELETE_BOUND = Duration.ofSeconds(30);
    /**
     * How long {@link #events()} waits, once the release ended, for the init's {@code /tasks/delete}: a remote
     * shim forwards it on its own time, and may answer the delete (and the shutdown) before it did.
     */
    static final Duration LAST_EVENT_WAIT = Duration.ofSeconds(2);

    private final RuntimePlugin runtime;
    private final Bundle bundle;
    private final Spec spec;
    private final List<Path> lowers;
    private final int outputBuffer;
    private final Scheduler io;
    private final Scheduler output;
    private final Consumer<Mono<Void>> releasing;
    private final BoundedOutput stdout;
    private final BoundedOutput stderr;
    private final Sinks.One<ExitStatus> exit = Sinks.one();
    private final AtomicReference<Sinks.Empty<Void>> release = new AtomicReference<>();
    /** The release ended; set before any caller of {@link #release()} hears of it. */
    private volatile boolean released;
    /**
     * The release succeeded; set before any caller of {@link #release()} hears of it. One that failed (a plugin stop
     * cut it short) may have left the container running, for the next runtime: its calls are not refused as released.
     */
    private volatile boolean releaseSucceeded;
    /** The release's own watch saw the init's {@code /tasks/delete} go into the exchange. */
    private final Sinks.Empty<Void> deleteSeen = Sinks.empty();
    private volatile boolean deleteWasSeen;
    /** The release ended and its delete event was seen, or was waited for {@link #LAST_EVENT_WAIT}. */
    private final Sinks.Empty<Void> eventsEnd = Sinks.empty();
    private volatile ShimClient shim;
    private volatile boolean created;
    private volatile boolean started;
    private volatile int pid;
    private volatile Disposable exitWatch;

    /**
     * @param lowers the read-only layers of the container's root, top first ({@link RootfsOverlay})
     * @param io where blocking work runs
     * @param output where output subscribers (the container's and its execs') are called
     * @param releasing told of the release once it begins, before it ends
     */
    LinuxContainer(RuntimePlugin runtime, Bundle bundle, Spec spec, List<Path> lowers, int outputBuffer,
            Scheduler io, Scheduler output, Consumer<Mono<Void>> releasing) {
        this.runtime = runtime;
        this.bundle = bundle;
        this.spec = spec;
        this.lowers = List.copyOf(lowers);
        this.outputBuffer = outputBuffer;
        this.io = io;
        this.output = output;
        this.releasing = releasing;
        this.stdout = new BoundedOutput("stdout of container " + name(), outputBuffer, output);
        this.stderr = new BoundedOutput("stderr of container " + name(), outputBuffer, output);
    }

    /**
     * Makes the root's upper directory, gets the shim, creates the task on the overlay root with streamed stdio
     * and starts it. On failure everything made so far is released before the error is passed on (the upper
     * directory goes with the bundle's work directory). Once {@code cancelled}, the steps not begun are skipped.
     */
    Mono<LinuxContainer> launch(ShimOpt opt, RuncOptions options, Stdio stdio, BooleanSupplier cancelled) {
        return Mono.fromCallable(() -> RootfsOverlay.prepare(name(), lowers, bundle.workDir()))
                .subscribeOn(io)
                .onErrorMap(IOException.class, failure -> StorageErrors.typed("make the rootfs upper directory"
                        + " of container " + name() + " in " + bundle.workDir(), failure))
                .flatMap(root -> {
                    checkNotCancelled(cancelled, name());
                    return bundle.newShimClient(opt, options).map(client -> {
                        shim = client;
                        return new CreateOptions(List.of(root), stdio);
                    });
                })
                .flatMap(create -> {
                    checkNotCancelled(cancelled, name());
                    return shim.create(create);
                })
                .flatMap(streams -> {
                    created = true;
                    // Read from before the start: nothing the process writes is lost or left to fill a pipe.
                    stdout.connect(streams.stdout());
                    stderr.connect(streams.stderr());
                    checkNotCancelled(cancelled, name());
                    return shim.start();
                })
                .map(startedPid -> {
                    pid = startedPid;
                    started = true;
                    exitWatch = shim.awaitExit().subscribe(exit::tryEmitValue, exit::tryEmitError);
                    return this;
                })
                .onErrorResume(failure -> release()
                        .onErrorResume(releaseFailure -> {
                            failure.addSuppressed(releaseFailure);
                            return Mono.empty();
                        })
                        .then(Mono.error(failure)));
    }

    /** Ends a run nobody waits for any more before its next step; its launch then releases what exists. */
    static void checkNotCancelled(BooleanSupplier cancelled, String name) {
        if (cancelled.getAsBoolean()) {
            throw new CancellationException("run of container " + name + " was cancelled");
        }
    }

    @Override
    public String namespace() {
        return bundle.namespace();
    }

    @Override
    public String id() {
        return bundle.id();
    }

    @Override
    public Bundle bundle() {
        return bundle;
    }

    @Override
    public Spec spec() {
        return spec;
    }

    @Override
    public ShimClient shim() {
        return shim;
    }

    @Override
    public int pid() {
        return pid;
    }

    @Override
    public Flux<byte[]> stdout() {
        return stdout.flux();
    }

    @Override
    public Flux<byte[]> stderr() {
        return stderr.flux();
    }

    @Override
    public long droppedStdoutBytes() {
        return stdout.droppedBytes();
    }

    @Override
    public long droppedStderrBytes() {
        return stderr.droppedBytes();
    }

    @Override
    public Mono<ExitStatus> exit() {
        return exit.asMono();
    }

    @Override
    public Mono<ExecProcess> exec(String execId, Spec.Process process) {
        return unlessReleased("exec " + execId + " in", () -> Operations.runToEnd(Mono.defer(() -> {
            LinuxExecProcess exec = new LinuxExecProcess(shim, execId, name(), outputBuffer, output);
            return exec.launch(process, Stdio.streams(null));
        }), LinuxExecProcess::discard).cast(ExecProcess.class));
    }

    @Override
    public Mono<Void> resize(TerminalSize size) {
        return unlessReleased("resize the terminal of", () -> shim.resize(ShimClient.INIT, size));
    }

    @Override
    public Mono<ExecProcess> exec(String execId, Spec.Process process, Stdio stdio) {
        return unlessReleased("exec " + execId + " in", () -> {
            // An exec's output is always read into its buffers: a kind that sends it elsewhere has no place here.
            if (!(stdio instanceof Stdio.Streams || stdio instanceof Stdio.Terminal)) {
                return Mono.error(new InvalidSpecException("exec " + execId + " in container " + name()
                        + ": stdio must be Stdio.streams or Stdio.terminal, not " + stdio));
            }
            return Operations.runToEnd(Mono.defer(() -> {
                LinuxExecProcess exec = new LinuxExecProcess(shim, execId, name(), outputBuffer, output);
                return exec.launch(process, stdio);
            }), LinuxExecProcess::discard).cast(ExecProcess.class);
        });
    }

    @Override
    public Mono<Void> kill(int signal) {
        return unlessReleased("kill", () -> shim.kill(signal, false));
    }

    @Override
    public Mono<ContainerStats> stats() {
        return unlessReleased("get stats of", shim::stats);
    }

    /**
     * {@code call}, unless the release ended: then refused alike on both shims, saying so (the local shim's answer
     * was "container not created", the remote one's that its shim was shut down). A call that fails once the
     * release began lost the race to it, and says so, its shim's error kept as the cause: it was runc's own ("error
     * executing setns process"), or, on the remote shim, "detached from its shim; connect() again".
     */
    private <T> Mono<T> unlessReleased(String action, Supplier<Mono<T>> call) {
        return Mono.defer(() -> releaseSucceeded ? Mono.error(releasedError(action, null)) : call.get()
                .onErrorMap(this::lostToTheRelease, failure -> releasedError(action, failure)));
    }

    /**
     * Whether a call's failure came of the release begun meanwhile: not one of the caller's own arguments (an id
     * in use, a bad spec), nor a plugin stop, which is told as such.
     */
    private boolean lostToTheRelease(Throwable failure) {
        if (release.get() == null || io.isDisposed() || released && !releaseSucceeded) {
            // No release, a plugin stop, or a release that failed: the shim's error is the truth.
            return false;
        }
        ErrorCode code = failure instanceof ShimmerException known ? known.code() : ErrorCode.INTERNAL;
        return code != ErrorCode.INVALID_ARGUMENT && code != ErrorCode.ALREADY_EXISTS;
    }

    private NotFoundException releasedError(String action, Throwable cause) {
        String why = cause == null ? "it was released"
                : (releaseSucceeded ? "it was released meanwhile (" : "it is being released (") + cause.getMessage()
                        + ")";
        return new NotFoundException(action + " container " + name() + ": " + why, cause);
    }

    /**
     * The task's events until the release: a subscriber completes after the release ended, once it got the init's
     * {@code /tasks/delete} (or, if that event did not reach the exchange within {@link #LAST_EVENT_WAIT}, then).
     * One made after the release ended completes at once: what the exchange carries for this id from then on is
     * another container's.
     */
    @Override
    public Flux<Envelope> events() {
        return Flux.defer(() -> {
            if (released) {
                return Flux.empty();
            }
            // Seen already: it went in before this subscription, which will never get it.
            boolean deletedBefore = deleteWasSeen;
            Sinks.Empty<Void> gotDelete = Sinks.empty();
            DeliveryProgress progress = new DeliveryProgress();
            // Seen by the release's watch after this subscription began: on its way to this one too, unless the
            // subscription began after the exchange handed it out. Waited for while this subscriber is behind (a
            // slow one lost it from its backlog after a fixed wait); given up once it asked for more and got
            // nothing for LAST_EVENT_WAIT.
            Mono<Void> released = eventsEnd.asMono().then(Mono.defer(() -> deletedBefore || !deleteWasSeen
                    ? Mono.empty() : Mono.firstWithSignal(gotDelete.asMono(), progress.starved(LAST_EVENT_WAIT))));
            Mono<Void> end = Mono.firstWithSignal(released, stoppedUnreleased());
            // Noted after the envelope went through: an end that comes then is held until the subscriber has it.
            // A container's events complete with the runtime's stop (Container.events), where its shim's fail.
            return progress.track(shim.events().onErrorResume(UnavailableException.class, stopped -> Flux.empty())
                    .takeUntilOther(end).doOnNext(envelope -> {
                        if (isInitDelete(envelope)) {
                            gotDelete.tryEmitEmpty();
                        }
                    }));
        });
    }

    /**
     * Completes when the runtime stopped before any release began: the exit's watch then fails with
     * {@link UnavailableException}. A host's own exchange outlives the stop, so its subscription alone never ended,
     * and a container's events went on past the stop, against {@link Container#events()}.
     */
    private Mono<Void> stoppedUnreleased() {
        return exit.asMono().then(Mono.<Void>never()).onErrorResume(stopped -> release.get() == null
                && stopped instanceof UnavailableException ? Mono.empty() : Mono.never());
    }

    private boolean isInitDelete(Envelope envelope) {
        return envelope.event() instanceof TaskEvent.TaskDelete delete && delete.containerId().equals(id());
    }

    /** Ends every {@link #events()} subscription once the release ended and its delete event came (or did not). */
    private void endEvents(Disposable deleteWatch) {
        released = true;
        // No watch: no task was made, so no delete event will come.
        Mono<Void> lastEvent = deleteWatch.isDisposed() ? Mono.empty() : deleteSeen.asMono();
        lastEvent.timeout(LAST_EVENT_WAIT, Mono.empty())
                .doFinally(signal -> {
                    deleteWatch.dispose();
                    eventsEnd.tryEmitEmpty();
                })
                .subscribe(null, failure -> log.debug("events of container {}: {}", name(), failure.toString()));
    }

    @Override
    public Mono<Void> release() {
        return Mono.defer(() -> {
            Sinks.Empty<Void> mine = Sinks.empty();
            if (release.compareAndSet(null, mine)) {
                releasing.accept(mine.asMono());
                // Watched from before the task's delete, which publishes it: see events().
                Disposable deleteWatch = shim == null || !created ? Disposables.disposed()
                        : shim.events().filter(this::isInitDelete).next()
                                .subscribe(delete -> {
                                    deleteWasSeen = true;
                                    deleteSeen.tryEmitEmpty();
                                }, failure -> { });
                // Run to its end whoever cancels: a release half done is the leak it exists to prevent.
                releaseOnce().doOnSuccess(done -> releaseSucceeded = true)
                        .doOnTerminate(() -> endEvents(deleteWatch))
                        .subscribe(null, mine::tryEmitError, mine::tryEmitEmpty);
            }
            return release.get().asMono();
        });
    }

    /**
     * Undoes what exists, in reverse: kill and wait for the exit, delete the task, shut the shim down, delete the
     * bundle. A step that fails does not stop the next ones; only the bundle's delete decides, as it refuses while
     * anything of the container lives. When it refuses, or a call to the shim timed out ({@link #STEP_BOUND}),
     * {@link RuntimePlugin#forceDelete} removes what is left.
     */
    private Mono<Void> releaseOnce() {
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        AtomicBoolean hung = new AtomicBoolean();
        ShimClient client = shim;
        Mono<Void> task = Mono.empty();
        if (client != null && created) {
            if (started) {
                task = step("kill", () -> client.kill(SIGKILL, true).onErrorResume(gone -> Mono.empty()), hung,
                        failures)
                        .then(Mono.defer(() -> hung.get() ? Mono.empty() : exit.asMono().timeout(EXIT_AFTER_KILL)
                                .then()
                                .onErrorResume(noExit -> {
                                    failures.add(noExit);
                                    return Mono.empty();
                                })));
            }
            task = task.then(step("delete", () -> client.delete()
                    .onErrorResume(NotFoundException.class, gone -> Mono.empty()), hung, failures));
        }
        Mono<Void> shimDown = client == null ? Mono.empty() : step("shutdown", client::shutdown, hung, failures);
        return task.then(shimDown)
                // A shim that died is cleaned up by its session (the shim's own delete, then init reaped): wait
                // for that while the bundle is in use, as deleting by force meanwhile killed that delete and left
                // init a zombie of this JVM. A hung remote shim is killed first, to be cleaned up the same way.
                .then(Mono.defer(() -> hung.get() ? killHungShim() : Mono.empty()))
                .then(Mono.defer(bundle::delete).retryWhen(Retry.backoff(6, Duration.ofMillis(100))
                        .maxBackoff(Duration.ofSeconds(1))
                        .filter(FailedPreconditionException.class::isInstance)
                        .onRetryExhaustedThrow((spec, signal) -> signal.failure())))
                .onErrorResume(refused -> {
                    if (!failures.contains(refused)) {
                        failures.add(refused);
                    }
                    log.warn("release of container {} left something ({}); deleting by force", name(),
                            failures.stream().map(Throwable::getMessage).toList());
                    return runtime.forceDelete(namespace(), id())
                            .timeout(FORCE_DELETE_BOUND)
                            .onErrorMap(left -> cannotRelease(left, failures));
                })
                .doFinally(signal -> {
                    Disposable watch = exitWatch;
                    if (watch != null) {
                        watch.dispose();
                    }
                    exit.tryEmitError(new UnavailableException("container " + name() + " was released before "
                            + "its exit was known"));
                    stdout.disconnect();
                    stderr.disconnect();
                });
    }

    /**
     * SIGKILL, through a pidfd, to the remote shim that stopped answering: its session sees it die and runs the
     * shim's own delete, which kills and reaps the container's init. Deleting by force while the shim was still
     * stopped killed init under it, and init, reparented to this JVM once the shim died, stayed a zombie.
     */
    private Mono<Void> killHungShim() {
        return runtime.inspect(namespace(), id())
                .flatMap(found -> Mono.justOrEmpty(found.shim()))
                .filter(found -> found.kind() == BundleInspection.ShimKind.REMOTE && found.alive())
                .flatMap(found -> Mono.fromCallable(() -> {
                    try (OwnedFd pidfd = OwnedFd.pidfd(found.pid())) {
                        return pidfd.use(number -> {
                            LinuxCalls.pidfdSendSignal(number, SIGKILL);
                            return found.pid();
                        });
                    }
                }).subscribeOn(io))
                .doOnNext(pid -> log.warn("killed the hung shim (pid {}) of container {}", pid, name()))
                .then()
                .onErrorResume(failure -> {
                    log.warn("could not kill the hung shim of container {}", name(), failure);
                    return Mono.empty();
                });
    }

    /**
     * One call of a release to the shim, bounded by {@link #STEP_BOUND}; its failure is noted and the release goes
     * on. Skipped once an earlier call timed out; a timeout marks the shim {@code hung}.
     */
    private Mono<Void> step(String what, Supplier<Mono<?>> call, AtomicBoolean hung, List<Throwable> failures) {
        return Mono.defer(() -> hung.get() ? Mono.empty() : call.get()
                .then()
                .timeout(STEP_BOUND, Mono.error(() -> {
                    hung.set(true);
                    return new ShimException(ErrorCode.DEADLINE_EXCEEDED, what + " of container " + name()
                            + " got no answer within " + STEP_BOUND + "; the shim is taken for hung");
                }))
                .onErrorResume(failure -> {
                    failures.add(failure);
                    return Mono.empty();
                }));
    }

    /** The error of a release that left something: the code of what was left, naming the way to retry. */
    private ShimmerException cannotRelease(Throwable left, List<Throwable> failures) {
        String message = "release container " + name() + " left something: " + left.getMessage()
                + "; RuntimePlugin.forceDelete(\"" + namespace() + "\", \"" + id() + "\") retries";
        ErrorCode code = left instanceof ShimmerException known ? known.code()
                : left instanceof TimeoutException ? ErrorCode.DEADLINE_EXCEEDED : ErrorCode.UNAVAILABLE;
        ShimmerException named = switch (code) {
            case FAILED_PRECONDITION -> new FailedPreconditionException(message, left);
            case UNAVAILABLE -> new UnavailableException(message, left);
            case RESOURCE_EXHAUSTED -> new ResourceExhaustedException(message, left);
            case NOT_FOUND -> new NotFoundException(message, left);
            default -> new ShimException(code, message, left);
        };
        failures.forEach(named::addSuppressed);
        return named;
    }

    private String name() {
        return bundle.namespace() + "/" + bundle.id();
    }
}
