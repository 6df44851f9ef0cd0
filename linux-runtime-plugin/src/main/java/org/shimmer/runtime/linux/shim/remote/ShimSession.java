package org.shimmer.runtime.linux.shim.remote;

import com.google.protobuf.Empty;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.cleanup.BundleReaper;
import org.shimmer.runtime.linux.poll.FifoPoller;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.shim.TaskEvents;
import org.shimmer.runtime.linux.shim.proto.DeleteResponse;
import org.shimmer.runtime.linux.shim.proto.ShutdownRequest;
import org.shimmer.runtime.linux.ttrpc.CallOptions;
import org.shimmer.runtime.linux.ttrpc.TtrpcClosedException;
import org.shimmer.runtime.linux.ttrpc.TtrpcConnection;
import org.shimmer.runtime.shim.ShimException;
import org.shimmer.runtime.shim.ShimExit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.Disposable;
import reactor.core.Disposables;
import reactor.core.publisher.Mono;

/**
 * One client's attachment to a running {@code containerd-shim-runc-v2}: the connection, the calls over it, and
 * what happens when it ends — a detach, a shutdown, or the death of the shim.
 *
 * <p>Detach is not death: the connection closing — because we closed it (close, a plugin stop) or for any other
 * reason — only detaches (calls then fail with {@link UnavailableException}; {@code connect()} reattaches). The
 * shim is dead only when its process is gone, which the exit monitor learns through a pidfd opened while the shim
 * answered on this connection. Issue 9: taking our own disconnect for a death ran the shim's {@code delete} on
 * every plugin stop, killing the container and leaving the shim unreachable.
 *
 * <p>Invariant: when the shim process dies while we are attached (neither closing nor shutting it down), the
 * dead-shim cleanup runs once: the shim's own {@code delete}, then, if a task is tracked, one synthetic
 * {@code /tasks/exit} (unless the shim's own went into the exchange, as {@link InitExits} decides; the shim's
 * {@code delete} reports 137, as containerd's dead-shim cleanup does) and one {@code /tasks/delete}, then the exit
 * handler.
 */
final class ShimSession {

    static final String TASK = "containerd.task.v2.Task";

    /** Shutdown waits this long for the shim to close the connection. */
    static final Duration SHUTDOWN_TIMEOUT = Duration.ofSeconds(5);

    /**
     * How long after a connection closed on its own the shim's process may take to be gone for it to count as dead:
     * a dying process closes its sockets just before it exits.
     */
    static final Duration DEATH_GRACE = Duration.ofSeconds(2);

    private static final Logger log = LoggerFactory.getLogger(ShimSession.class);

    private final Bundle bundle;
    private final String task;
    private final ShimCommand command;
    private final Path socket;
    private final RuntimeResources resources;
    private final EventExchange exchange;
    private final Consumer<ShimExit> exitHandler;
    private final TaskClaims claims;
    private final InitExits initExits;
    private final RemoteShimClient client;
    private final CallOptions callOptions;
    /** Set once we end the connection ourselves (close, shutdown): the shim's end is then no death. */
    private final AtomicBoolean ending = new AtomicBoolean();
    private final AtomicBoolean deadShimCleaned = new AtomicBoolean();
    /** Set before a forced delete of the bundle detaches this client and kills its shim. */
    private final AtomicBoolean forceDeleted = new AtomicBoolean();
    /** Set by {@link #close()}: this client let go of the shim, and can no longer shut it down. */
    private final AtomicBoolean closed = new AtomicBoolean();
    /** This client's shutdown ended the shim: there is nothing left to connect() to. */
    private final AtomicBoolean shutDown = new AtomicBoolean();
    private volatile TtrpcConnection connection;
    private volatile FifoPoller.FifoStream shimLog;
    private volatile Mono<Void> shimGone = Mono.never();
    private volatile int shimPid;
    /** For a shim found dead before any attach: its record's {@link ShimRecord#stamp}, which names it then. */
    private volatile Object deadShimRecord;
    private volatile int initPid;
    private volatile boolean initTracked;
    /** The init whose exit went into {@link #exchange}, as {@link InitExits} told; 0 for none. */
    private volatile int initExitSeenPid;
    /** When this session was told of the exit of {@link #initExitSeenPid}. */
    private volatile Instant initExitSeenAt = Instant.MIN;

    ShimSession(Bundle bundle, ShimCommand command, Path socket, RuntimeResources resources, EventExchange exchange,
            Consumer<ShimExit> exitHandler, TaskClaims claims, InitExits initExits, RemoteShimClient client) {
        this.bundle = bundle;
        this.task = "task " + bundle.namespace() + "/" + bundle.id();
        this.command = command;
        this.socket = socket;
        this.resources = resources;
        this.exchange = exchange;
        this.exitHandler = exitHandler;
        this.claims = claims;
        this.initExits = initExits;
        this.client = client;
        this.callOptions = CallOptions.defaults().withNamespace(bundle.namespace());
    }

    /** Takes over a connected shim; {@code log} is its log FIFO, or null; {@code gone} completes when it exited. */
    void attach(TtrpcConnection connection, int shimPid, FifoPoller.FifoStream log, Mono<Void> gone) {
        this.connection = connection;
        this.shimPid = shimPid;
        this.shimLog = log;
        this.shimGone = gone;
        claims.attached(bundle.path(), client);
        // Told as the exit goes into the exchange: a subscription of its own, called on the output threads, was late
        // whenever host subscribers held them all, and the end published for a dead shim then repeated the exit.
        initExits.watch(bundle.namespace(), bundle.id(), this);
    }

    /**
     * The init task exists in the shim (created here, or found by a reconnect); {@code exited}: its exit went into
     * the exchange already. An exit that went in since the attach is kept (it names this pid).
     */
    void trackInit(int pid, boolean exited) {
        initPid = pid;
        initTracked = true;
        if (exited) {
            initExitSeenAt = Instant.now();
            initExitSeenPid = pid;
        }
    }

    /** Whether the exit of init {@code pid} already went through {@code into}, as this session was told. */
    boolean initExitSeenIn(EventExchange into, int pid) {
        return pid != 0 && initExitSeenPid == pid && initPid == pid && exchange == into;
    }

    /**
     * A create of the task, stamped {@code createdAt} by its shim, went into {@code into} ({@link InitExits#created}):
     * made after the exit this session was told of, it is a new init, no exit of which went in yet. One stamped
     * before is a shim's retry of a Forward refused once, which comes after the next events: the exit heard stands
     * (forgotten, a connect() or the cleanup after the dead shim published it a second time).
     */
    void initCreatedIn(EventExchange into, Instant createdAt) {
        if (exchange == into && createdAt.isAfter(initExitSeenAt)) {
            initExitSeenPid = 0;
        }
    }

    /** The exit of init {@code pid} went into {@code into} ({@link InitExits}); never waits. */
    void initExitWentInto(EventExchange into, int pid) {
        if (exchange == into) {
            initExitSeenAt = Instant.now();
            initExitSeenPid = pid;
        }
    }

    /**
     * The init of a shim found dead whose task is gone already (runc has no container): nothing of it is reported,
     * but its end is still reaped if the JVM adopted it.
     */
    void initWithoutTask(int pid) {
        initPid = pid;
        initTracked = false;
    }

    /** The shim was found dead before any attach, its record then as {@code stamp} ({@link ShimRecord#stamp}). */
    void foundDead(Object stamp) {
        deadShimRecord = stamp;
    }

    /** A forced delete of the bundle is about to detach this client and kill its shim: later calls find no task. */
    void forceDeleted() {
        forceDeleted.set(true);
    }

    /** The init task was deleted. */
    void untrackInit() {
        initTracked = false;
        initExitSeenPid = 0;
    }

    boolean initTracked() {
        return initTracked;
    }

    int shimPid() {
        return shimPid;
    }

    TtrpcConnection connection() {
        return connection;
    }

    /** Calls {@code method} of the task service with the session's namespace. */
    <T> Mono<T> call(String action, String method, MessageLite request, Parser<T> parser) {
        return call(action, method, request, parser, callOptions);
    }

    <T> Mono<T> call(String action, String method, MessageLite request, Parser<T> parser, CallOptions options) {
        return Mono.defer(() -> connection.call(TASK, method, request, parser, options))
                .onErrorResume(error -> error instanceof TtrpcClosedException closed ? cut(action, closed)
                        : Mono.error(mapError(action, error)));
    }

    /**
     * A call cut short by the end of a connection we did not end. A dying shim closes its sockets just before it
     * exits: once its process is gone within {@link #DEATH_GRACE} the call says so. Every call in flight (a Wait, a
     * Start) failed as "detached; connect() again", and a connect() then found no shim.
     */
    private <T> Mono<T> cut(String action, TtrpcClosedException closed) {
        if (ending.get() || deadShimCleaned.get()) {
            return Mono.error(mapError(action, closed));
        }
        return shimGone.timeout(DEATH_GRACE, resources.io())
                .onErrorMap(alive -> mapError(action, closed))
                .then(Mono.error(() -> new ShimException(ErrorCode.UNAVAILABLE, action + " " + task
                        + ": its shim (pid " + shimPid + ") exited; a task it had is cleaned up", closed)));
    }

    /** Calls {@code method} as it is, its failure not mapped: for callers that classify it themselves. */
    <T> Mono<T> rawCall(String method, MessageLite request, Parser<T> parser, CallOptions options) {
        return Mono.defer(() -> connection.call(TASK, method, request, parser, options));
    }

    CallOptions callOptions() {
        return callOptions;
    }

    Throwable mapError(String action, Throwable error) {
        if (error instanceof TtrpcClosedException closed) {
            if (forceDeleted.get()) {
                // As the local shim answers: a forced delete removed the task with its bundle; a connect() finds
                // nothing to reach.
                return new NotFoundException(action + " " + task + ": not found: a forced delete removed it (its"
                        + " shim, pid " + shimPid + ", was killed)", closed);
            }
            if (shutDown.get()) {
                // As the local shim answers: a task whose shim this client shut down is gone, not detached.
                return new NotFoundException(action + " " + task + ": not found: this client shut its shim (pid "
                        + shimPid + ") down after its delete", closed);
            }
            return deadShimCleaned.get()
                    ? new ShimException(ErrorCode.UNAVAILABLE,
                            action + " " + task + ": its shim died; the task was cleaned up", closed)
                    : new UnavailableException(action + " " + task + ": detached from its shim (pid " + shimPid
                            + "); connect() again to reach it", closed);
        }
        return ShimErrors.map(action, task, error);
    }

    /**
     * Refuses to make anything (FIFOs, an exec) for a session that ended: closed, shut down or its shim found dead.
     * Only the call to the shim told, after the FIFOs had been made, and an exec on a released container's client
     * made the deleted bundle's work directory again.
     */
    void requireOpen(String action) {
        TtrpcConnection current = connection;
        if (ending.get() || deadShimCleaned.get() || current == null || current.isDisposed()) {
            throw (RuntimeException) mapError(action,
                    new TtrpcClosedException("the connection to the shim is closed"));
        }
    }

    /** Ends the shim, which must have no task left; done once its process is gone. */
    Mono<Void> shutdown() {
        return Mono.defer(() -> {
            if (closed.get()) {
                // Done if the shim is gone (a forced delete killed it). Else an error: sent over the closed
                // connection, Shutdown never arrived, and this waited 5 s and succeeded while the shim ran on.
                return shimGone.timeout(DEATH_GRACE, resources.io())
                        .onErrorMap(alive -> new UnavailableException("shutdown " + task + ": this client was closed"
                                + " (detached from its shim, pid " + shimPid + "); connect() again to shut it down",
                                alive));
            }
            if (initTracked) {
                return Mono.error(new FailedPreconditionException("shutdown " + task
                        + ": the task still exists; delete it first (the shim ignores shutdown until then)"));
            }
            ending.set(true);
            claims.release(bundle.path(), client);
            TtrpcConnection current = connection;
            // Done once the shim process is gone (and reaped, if it is our child), not merely disconnected. The call
            // has a deadline: a stopped (SIGSTOP) or wedged shim never answers, and shutdown() waited for good.
            return current.call(TASK, "Shutdown", ShutdownRequest.newBuilder().setId(bundle.id()).build(),
                            Empty.parser(), callOptions.withTimeout(SHUTDOWN_TIMEOUT))
                    .onErrorResume(error -> Mono.empty())
                    .then(Mono.when(current.onClose(), shimGone).thenReturn(true)
                            .timeout(SHUTDOWN_TIMEOUT, Mono.just(false), resources.io()))
                    // A shim that stays is detached: the connection went on holding a descriptor for its life.
                    .flatMap(gone -> gone ? Mono.just(true) : current.disposeLater()
                            .onErrorResume(error -> Mono.empty()).thenReturn(false))
                    .flatMap(gone -> Mono.<Void>fromCallable(() -> {
                        releaseAll();
                        if (gone) {
                            shutDown.set(true);
                            ShimRecord.remove(bundle.workDir());
                        } else {
                            // It ignored Shutdown (a task another client made, or a hung shim): its record stays,
                            // so connect() and forceDelete still find it. Removing it lost a running shim.
                            log.warn("the shim of {} (pid {}) did not exit within {} of Shutdown; detached, its"
                                    + " record kept", task, shimPid, SHUTDOWN_TIMEOUT);
                        }
                        return null;
                    }).subscribeOn(resources.io()))
                    .doOnCancel(() -> detachAfterCancel(current));
        });
    }

    /** Detaches: the shim and its task keep running, and {@code connect()} finds them again. */
    Mono<Void> close() {
        return Mono.defer(() -> {
            ending.set(true);
            closed.set(true);
            claims.release(bundle.path(), client);
            // Detaching drops our ends of the process's FIFOs too: streams do not survive a detach.
            TtrpcConnection current = connection;
            return current.disposeLater().then(Mono.<Void>fromRunnable(this::releaseAll)
                    .subscribeOn(resources.io()))
                    .doOnCancel(() -> detachAfterCancel(current));
        });
    }

    /**
     * The end of a shutdown or close cancelled midway. Its claim was given up when it began, and nothing ever
     * looked at this session again: the connection and the streams stayed open until the plugin stopped (a
     * matrix row of issue 14). It ends as a detach: the shim (which may have taken Shutdown and be exiting) keeps
     * its record, so connect() finds it, or finds it gone and cleans up after it.
     */
    private void detachAfterCancel(TtrpcConnection current) {
        current.disposeLater()
                .onErrorResume(error -> Mono.empty())
                .then(Mono.<Void>fromRunnable(this::releaseAll).subscribeOn(resources.io()))
                .subscribe(done -> {}, error -> log.debug("{}: detaching after a cancelled shutdown: {}", task,
                        error.toString()));
    }

    /**
     * Called once the connection closed. Never a death by itself: a plugin stop closes it too, and a shim may drop a
     * connection and live on. The shim died only if its process is gone within {@link #DEATH_GRACE} and its socket
     * file is still there (a shim that another client shut down removes its socket before it exits); otherwise
     * this client is detached and no longer answers for the shim.
     */
    void onConnectionClosed() {
        if (ending.get()) {
            return;
        }
        // Tracked: a runtime that stops disposes it (or refuses it at once), so a stop never looks like a death.
        Disposable.Swap verdict = Disposables.swap();
        resources.track(verdict);
        verdict.update(shimGone
                .timeout(DEATH_GRACE, resources.io())
                // Its socket is still there (a shim shut down removes it first), or another client of this runtime
                // found it dead and is cleaning up.
                .then(Mono.fromCallable(() -> Files.exists(socket) || claims.diedHere(bundle.path(), shimPid))
                        .subscribeOn(resources.io()))
                .flatMap(died -> died ? cleanUpDeadShim() : Mono.<Void>fromRunnable(() -> {
                    log.info("the shim of {} (pid {}) was shut down by another client", task, shimPid);
                    releaseDetached();
                }).subscribeOn(resources.io()))
                .doFinally(signal -> resources.untrack(verdict))
                .subscribe(done -> {}, error -> {
                    if (error instanceof TimeoutException) {
                        log.info("the connection to the shim of {} (pid {}) closed while the shim lives; detached",
                                task, shimPid);
                        resources.io().schedule(this::releaseDetached);
                    } else if (error instanceof UnavailableException) {
                        // The runtime is stopping: its exit monitor no longer watches the shim. A detach too.
                        log.debug("{}: {}", task, error.getMessage());
                    } else {
                        log.warn("cleanup after the death of the shim of {} failed", task, error);
                    }
                }));
    }

    /**
     * containerd's cleanup after a dead shim, at most once: the shim's own {@code delete} kills and removes the
     * container, a synthetic exit stands in for the one the dead shim cannot send, and a delete event follows, as
     * containerd publishes both; the socket and record go, then the handler runs.
     */
    Mono<Void> cleanUpDeadShim() {
        return Mono.defer(() -> {
            if (!deadShimCleaned.compareAndSet(false, true)) {
                return Mono.empty();
            }
            log.warn("the shim of {} (pid {}) died; cleaning up", task, shimPid);
            claims.taskGone(bundle.path());
            // The shim's part runs once however many clients of this runtime were attached to it; each client
            // then lets go of its own readers and runs its own exit handler.
            return claims.deathCleanup(bundle.path(), shimPid, deadShimRecord, () -> Mono
                            .<Void>fromRunnable(this::reapInitWhenKilled)
                            .then(Mono.fromCallable(this::runShimDelete))
                            .flatMap(this::publishDeadTask)
                            .then(Mono.<Void>fromRunnable(() -> {
                                try {
                                    // Only a shim's socket: the path may come from a stale or altered record.
                                    BundleReaper.removeShimSocket(socket);
                                    ShimRecord.remove(bundle.workDir());
                                } catch (IOException e) {
                                    log.warn("could not remove the dead shim's socket {}", socket, e);
                                }
                            }))
                            .subscribeOn(resources.io()))
                    .then(Mono.<Void>fromRunnable(() -> {
                        releaseAll();
                        runExitHandler();
                    }).subscribeOn(resources.io()));
        });
    }

    /** The dead shim's init was re-parented to us if the JVM is a subreaper: its end must be reaped here. */
    private void reapInitWhenKilled() {
        try {
            resources.exitMonitor().reapIfAdopted(initPid);
        } catch (IOException e) {
            log.debug("init {} of {} is not ours to reap: {}", initPid, task, e.toString());
        }
    }

    private Mono<Void> publishDeadTask(Optional<DeleteResponse> deleted) {
        if (!initTracked) {
            return Mono.empty();
        }
        initTracked = false;
        int pid = deleted.map(DeleteResponse::getPid).filter(p -> p != 0).orElse(initPid);
        int status = deleted.map(DeleteResponse::getExitStatus).orElse(137);
        Instant exitedAt = deleted.filter(DeleteResponse::hasExitedAt)
                .map(d -> TaskEvents.instant(d.getExitedAt())).orElseGet(Instant::now);
        TaskEvent.TaskExit exit = new TaskEvent.TaskExit(bundle.id(), bundle.id(), pid, status, exitedAt);
        TaskEvent.TaskDelete delete = new TaskEvent.TaskDelete(bundle.id(), pid, status, exitedAt);
        // The shim's own exit may have gone in (or may yet come, then dropped): decided at once for both.
        boolean publishExit = initExits.endingDeadShim(this, exchange, bundle.namespace(), bundle.id(),
                initPid != 0 ? initPid : pid);
        return (publishExit ? exchange.publish(bundle.namespace(), exit.topic(), exit) : Mono.<Void>empty())
                .then(exchange.publish(bundle.namespace(), delete.topic(), delete))
                .onErrorResume(error -> {
                    log.warn("could not publish the end of {} after its shim died", task, error);
                    return Mono.empty();
                });
    }

    private void runExitHandler() {
        if (connection == null) {
            return; // never attached: the caller gets the error instead of an exit notice
        }
        try {
            exitHandler.accept(new ShimExit(bundle.namespace(), bundle.id(), shimPid));
        } catch (RuntimeException e) {
            log.warn("the exit handler for {} failed", task, e);
        }
    }

    /** Runs the shim binary's {@code delete} (= {@code runc delete --force}); blocking. */
    Optional<DeleteResponse> runShimDelete() {
        try {
            ShimCommand.Result result = command.delete();
            if (result.exitCode() != 0) {
                log.warn("shim delete for {} exited {}: {}", task, result.exitCode(), result.stderr());
                return Optional.empty();
            }
            return Optional.of(DeleteResponse.parseFrom(result.stdout()));
        } catch (IOException | RuntimeException e) {
            log.warn("shim delete for {} failed", task, e);
            return Optional.empty();
        }
    }

    /** A detached client answers for nothing: its claim, FIFO readers and watches go, as on {@link #close()}. */
    private void releaseDetached() {
        ending.set(true);
        claims.release(bundle.path(), client);
        releaseAll();
    }

    private void releaseAll() {
        claims.detached(bundle.path(), client);
        client.releaseStreams();
        FifoPoller.FifoStream current = shimLog;
        if (current != null) {
            current.discard();
        }
        initExits.unwatch(bundle.namespace(), bundle.id(), this);
    }
}
