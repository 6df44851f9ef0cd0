package org.shimmer.runtime.linux.shim.remote;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.protobuf.Empty;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.bundle.Specs;
import org.shimmer.runtime.linux.poll.ExitMonitor;
import org.shimmer.runtime.linux.poll.FifoPoller;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.shim.ProcessStdio;
import org.shimmer.runtime.linux.shim.TaskEvents;
import org.shimmer.runtime.linux.shim.proto.CheckpointOptions;
import org.shimmer.runtime.linux.shim.proto.CheckpointTaskRequest;
import org.shimmer.runtime.linux.shim.proto.CloseIORequest;
import org.shimmer.runtime.linux.shim.proto.CreateTaskRequest;
import org.shimmer.runtime.linux.shim.proto.CreateTaskResponse;
import org.shimmer.runtime.linux.shim.proto.DeleteRequest;
import org.shimmer.runtime.linux.shim.proto.DeleteResponse;
import org.shimmer.runtime.linux.shim.proto.ExecProcessRequest;
import org.shimmer.runtime.linux.shim.proto.KillRequest;
import org.shimmer.runtime.linux.shim.proto.PauseRequest;
import org.shimmer.runtime.linux.shim.proto.PidsRequest;
import org.shimmer.runtime.linux.shim.proto.PidsResponse;
import org.shimmer.runtime.linux.shim.proto.ProcessDetails;
import org.shimmer.runtime.linux.shim.proto.ResumeRequest;
import org.shimmer.runtime.linux.shim.proto.ShutdownRequest;
import org.shimmer.runtime.linux.shim.proto.StartRequest;
import org.shimmer.runtime.linux.shim.proto.StartResponse;
import org.shimmer.runtime.linux.shim.proto.StateRequest;
import org.shimmer.runtime.linux.shim.proto.StateResponse;
import org.shimmer.runtime.linux.shim.proto.StatsRequest;
import org.shimmer.runtime.linux.shim.proto.StatsResponse;
import org.shimmer.runtime.linux.shim.proto.UpdateTaskRequest;
import org.shimmer.runtime.linux.shim.proto.WaitRequest;
import org.shimmer.runtime.linux.shim.proto.WaitResponse;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.ttrpc.CallOptions;
import org.shimmer.runtime.linux.ttrpc.StatusCode;
import org.shimmer.runtime.linux.ttrpc.TtrpcClosedException;
import org.shimmer.runtime.linux.ttrpc.TtrpcConnection;
import org.shimmer.runtime.linux.ttrpc.TtrpcStatusException;
import org.shimmer.runtime.linux.ttrpc.TtrpcTimeoutException;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.ProcessInfo;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimException;
import org.shimmer.runtime.shim.ShimExit;
import org.shimmer.runtime.shim.Stats;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.Disposable;
import reactor.core.Disposables;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * The task API of a running {@code containerd-shim-runc-v2}, over ttRPC.
 *
 * <p>Detach is not death: the connection closing — because we closed it ({@link #close()}, a plugin stop) or for
 * any other reason — only detaches this client (calls then fail with {@link UnavailableException}; {@code
 * connect()} reattaches). The shim is dead only when its process is gone, which the {@link ExitMonitor} learns
 * through a pidfd opened while the shim answered on this connection. Issue 9: taking our own disconnect for a
 * death ran the shim's {@code delete} on every plugin stop, killing the container and leaving the shim unreachable.
 *
 * <p>Invariants: the init task is "tracked" from a successful create until its delete; when the shim process dies
 * while we are attached (neither closing nor shutting it down), the dead-shim cleanup runs once: the shim's own
 * {@code delete}, then, if a task is tracked, one synthetic {@code /tasks/exit} (unless its exit was seen; the
 * shim's {@code delete} reports 137, as containerd's dead-shim cleanup does) and one {@code /tasks/delete}, then the
 * exit handler. Create is exclusive: this runtime's clients of a bundle take turns through {@link TaskClaims}, and
 * Create is sent only after the shim said it has no such task; the shim's {@code delete} after a failed create
 * runs only when this call's Create reached the shim (the shim creates the runc container before setting up its IO
 * and does not remove it on failure), never for a task someone else made.
 */
final class RemoteShimClient implements ShimClient {

    static final String TASK = "containerd.task.v2.Task";
    static final String PROCESS_SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Process";
    static final String RESOURCES_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

    /** Delete waits this long for output nobody consumes before it releases the FIFOs anyway. */
    static final Duration DRAIN_TIMEOUT = Duration.ofSeconds(5);

    /** Shutdown waits this long for the shim to close the connection. */
    static final Duration SHUTDOWN_TIMEOUT = Duration.ofSeconds(5);

    /**
     * How long after a connection closed on its own the shim's process may take to be gone for it to count as dead:
     * a dying process closes its sockets just before it exits.
     */
    static final Duration DEATH_GRACE = Duration.ofSeconds(2);

    /**
     * How long a Create may take. Long: a Create that times out is followed by the shim's own delete (runc delete
     * --force), and one that merely ran slow on a loaded machine must not lose the container it was making.
     */
    static final Duration CREATE_TIMEOUT = Duration.ofMinutes(2);

    private static final Logger log = LoggerFactory.getLogger(RemoteShimClient.class);

    private final Bundle bundle;
    private final ShimCommand command;
    private final Path socket;
    private final RuntimeResources resources;
    private final EventExchange exchange;
    private final Any runcOptions;
    private final Consumer<ShimExit> exitHandler;
    private final CallOptions callOptions;
    private final TaskClaims claims;
    private final Map<String, ProcessStdio> stdios = new ConcurrentHashMap<>();
    /** Set once we end the connection ourselves (close, shutdown): the shim's end is then no death. */
    private final AtomicBoolean ending = new AtomicBoolean();
    private final AtomicBoolean deadShimCleaned = new AtomicBoolean();
    private volatile TtrpcConnection connection;
    private volatile FifoPoller.FifoStream shimLog;
    private volatile Disposable exitWatch;
    private volatile Mono<Void> shimGone = Mono.never();
    private volatile int shimPid;
    private volatile int initPid;
    private volatile boolean initTracked;
    private volatile boolean initExitSeen;

    RemoteShimClient(Bundle bundle, ShimCommand command, Path socket, RuntimeResources resources,
            EventExchange exchange, Any runcOptions, Consumer<ShimExit> exitHandler, TaskClaims claims) {
        this.bundle = bundle;
        this.claims = claims;
        this.command = command;
        this.socket = socket;
        this.resources = resources;
        this.exchange = exchange;
        this.runcOptions = runcOptions;
        this.exitHandler = exitHandler;
        this.callOptions = CallOptions.defaults().withNamespace(bundle.namespace());
    }

    /**
     * Takes over a connected shim; {@code log} is its log FIFO, read by us, or null; {@code gone} completes when
     * the shim process has exited.
     */
    void attach(TtrpcConnection connection, int shimPid, FifoPoller.FifoStream shimLog, Mono<Void> gone) {
        this.connection = connection;
        this.shimPid = shimPid;
        this.shimLog = shimLog;
        this.shimGone = gone;
        claims.attached(bundle.path(), this);
        this.exitWatch = resources.track(events()
                .filter(envelope -> envelope.event() instanceof TaskEvent.TaskExit exit && exit.id().equals(id()))
                .subscribe(envelope -> initExitSeen = true, error -> {}));
    }

    /** Marks the init task as tracked after a reconnect found it. */
    void trackInit(int pid, boolean exited) {
        initPid = pid;
        initTracked = true;
        initExitSeen = exited;
    }

    int shimPid() {
        return shimPid;
    }

    /** The connection to the shim; tests cut it to play a connection lost while the shim lives. */
    TtrpcConnection connection() {
        return connection;
    }

    @Override
    public String id() {
        return bundle.id();
    }

    @Override
    public String namespace() {
        return bundle.namespace();
    }

    @Override
    public Mono<ProcessIo> create(CreateOptions options) {
        return Mono.defer(() -> {
            if (!claims.claim(bundle.path(), this)) {
                return Mono.error(new AlreadyExistsException("create " + task()
                        + ": already created, or being created, by another client of this runtime"));
            }
            return noTaskYet()
                    .then(Mono.fromCallable(() -> prepareStdio(options.stdio())).subscribeOn(resources.io()))
                    .flatMap(stdio -> createTask(options, stdio))
                    .doOnError(error -> claims.release(bundle.path(), this))
                    .doOnCancel(() -> claims.release(bundle.path(), this));
        }).onErrorMap(error -> !(error instanceof ShimmerException), this::createError);
    }

    /** Fails with {@link AlreadyExistsException} unless the shim answers that it has no such task. */
    private Mono<Void> noTaskYet() {
        return state("")
                .flatMap(found -> Mono.<Void>error(new AlreadyExistsException("create " + task()
                        + ": the shim already has it (" + found.status() + ", pid " + found.pid() + ")")))
                .onErrorResume(NotFoundException.class, absent -> Mono.empty());
    }

    private ProcessStdio prepareStdio(Stdio stdio) throws IOException {
        try {
            return ProcessStdio.prepare(stdio, ioDir(), id(), resources.poller(), resources.io());
        } catch (LinuxCalls.ErrnoException e) {
            if (e.errno() == LinuxCalls.EEXIST) {
                // Another process's FIFOs: left as they are.
                throw new AlreadyExistsException("create " + task() + ": its stdio FIFOs already exist in "
                        + ioDir(), e);
            }
            throw e;
        }
    }

    private Mono<ProcessIo> createTask(CreateOptions options, ProcessStdio stdio) {
        CreateTaskRequest.Builder request = CreateTaskRequest.newBuilder()
                .setId(id())
                .setBundle(bundle.path().toString())
                .setStdin(stdio.stdin())
                .setStdout(stdio.stdout())
                .setStderr(stdio.stderr())
                .setOptions(runcOptions);
        for (Mount mount : options.rootfs()) {
            request.addRootfs(org.shimmer.runtime.linux.shim.proto.Mount.newBuilder()
                    .setType(mount.type()).setSource(mount.source()).addAllOptions(mount.options()));
        }
        return Mono.defer(() -> connection.call(TASK, "Create", request.build(), CreateTaskResponse.parser(),
                        callOptions.withTimeout(CREATE_TIMEOUT)))
                .doFinally(signal -> stdio.launched())
                .map(created -> {
                    initPid = created.getPid();
                    initTracked = true;
                    initExitSeen = false;
                    stdios.put("", stdio);
                    stdio.startStdin(() -> endOfStdin(""));
                    return stdio.io(created.getPid());
                })
                .onErrorResume(error -> Mono.fromRunnable(() -> {
                            stdio.release();
                            if (createReachedShim(error)) {
                                runShimDelete();
                            }
                        })
                        .subscribeOn(resources.io())
                        .then(Mono.error(createError(error))))
                .doOnCancel(() -> resources.io().schedule(stdio::release));
    }

    /**
     * Whether a failed Create may have left a runc container of ours: the shim answered with a failure (or never
     * answered), and not because the task already existed. The shim was told there was no task before.
     */
    private static boolean createReachedShim(Throwable error) {
        if (error instanceof TtrpcStatusException status) {
            return status.code() != StatusCode.ALREADY_EXISTS && !saysAlreadyExists(status);
        }
        return error instanceof TtrpcTimeoutException;
    }

    private Throwable createError(Throwable error) {
        if (error instanceof TtrpcStatusException status && saysAlreadyExists(status)) {
            return new AlreadyExistsException("create " + task() + ": " + status.statusMessage(), status);
        }
        if (error instanceof TtrpcClosedException) {
            return mapError("create", error);
        }
        // runc's reason may be lost when it could not even log it: name a full file system the shim writes to.
        return ShimErrors.map("create", task(), error, bundle.path(), bundle.workDir());
    }

    private static boolean saysAlreadyExists(TtrpcStatusException status) {
        return status.statusMessage().contains("already exists");
    }

    @Override
    public Mono<Integer> start(String execId) {
        return call("start", "Start", StartRequest.newBuilder().setId(id()).setExecId(execId).build(),
                StartResponse.parser())
                .doFinally(signal -> {
                    ProcessStdio stdio = execId.isEmpty() ? null : stdios.get(execId);
                    if (stdio != null) {
                        stdio.launched();
                    }
                })
                .doOnSuccess(started -> {
                    // The shim opens an exec's stdio only at Start: only now may its stdin be fed (data written
                    // into a FIFO nobody else holds open is discarded when our end closes).
                    ProcessStdio stdio = execId.isEmpty() ? null : stdios.get(execId);
                    if (stdio != null) {
                        stdio.startStdin(() -> endOfStdin(execId));
                    }
                })
                .map(StartResponse::getPid);
    }

    @Override
    public Mono<ExitStatus> awaitExit(String execId) {
        return call("wait for", "Wait", WaitRequest.newBuilder().setId(id()).setExecId(execId).build(),
                WaitResponse.parser())
                .map(exited -> new ExitStatus(execId.isEmpty() ? initPid : 0, exited.getExitStatus(),
                        TaskEvents.instant(exited.getExitedAt())));
    }

    @Override
    public Mono<Void> kill(int signal, boolean all) {
        return call("kill", "Kill", KillRequest.newBuilder().setId(id()).setSignal(signal).setAll(all).build(),
                Empty.parser()).then();
    }

    @Override
    public Mono<Void> kill(String execId, int signal) {
        return call("kill", "Kill", KillRequest.newBuilder().setId(id()).setExecId(execId).setSignal(signal).build(),
                Empty.parser()).then();
    }

    @Override
    public Mono<ExitStatus> delete(String execId) {
        return call("delete", "Delete", DeleteRequest.newBuilder().setId(id()).setExecId(execId).build(),
                DeleteResponse.parser())
                .flatMap(deleted -> {
                    if (execId.isEmpty()) {
                        initTracked = false;
                        claims.taskGone(bundle.path());
                    }
                    ProcessStdio stdio = stdios.remove(execId);
                    // A process we did not prepare (we reattached) may have left FIFOs: nobody can use them now.
                    Mono<Void> drained = stdio != null ? stdio.drained(DRAIN_TIMEOUT)
                            : Mono.<Void>fromCallable(() -> {
                                ProcessStdio.removeFifos(ioDir(), execId.isEmpty() ? id() : execId);
                                return null;
                            }).subscribeOn(resources.io());
                    return drained.thenReturn(new ExitStatus(deleted.getPid(), deleted.getExitStatus(),
                            TaskEvents.instant(deleted.getExitedAt())));
                });
    }

    @Override
    public Mono<TaskState> state(String execId) {
        return call("get state of", "State", StateRequest.newBuilder().setId(id()).setExecId(execId).build(),
                StateResponse.parser()).map(RemoteShimClient::taskState);
    }

    @Override
    public Flux<ProcessInfo> pids() {
        return call("list processes of", "Pids", PidsRequest.newBuilder().setId(id()).build(), PidsResponse.parser())
                .flatMapIterable(PidsResponse::getProcessesList)
                .map(process -> new ProcessInfo(process.getPid(), execIdOf(process.getInfo())));
    }

    @Override
    public Mono<ProcessIo> exec(String execId, byte[] processSpec, Stdio stdio) {
        String action = "exec " + execId + " in";
        return Mono.fromCallable(() -> {
                    // Before any path is built from the id, or anything sent: the shim itself checks neither.
                    Identifiers.requireValid("exec id", execId);
                    Specs.requireJsonObject(action + " " + task(), processSpec);
                    return ProcessStdio.prepare(stdio, ioDir(), execId, resources.poller(), resources.io());
                })
                .subscribeOn(resources.io())
                .flatMap(prepared -> call(action, "Exec", ExecProcessRequest.newBuilder()
                                .setId(id()).setExecId(execId)
                                .setStdin(prepared.stdin()).setStdout(prepared.stdout()).setStderr(prepared.stderr())
                                .setSpec(Any.newBuilder().setTypeUrl(PROCESS_SPEC_TYPE)
                                        .setValue(ByteString.copyFrom(processSpec)))
                                .build(), Empty.parser())
                        .map(done -> {
                            stdios.put(execId, prepared);
                            return prepared.io(0);
                        })
                        .onErrorResume(error -> Mono.fromRunnable(prepared::release).subscribeOn(resources.io())
                                .then(Mono.error(error)))
                        .doOnCancel(() -> resources.io().schedule(prepared::release)))
                .onErrorMap(error -> ShimErrors.map(action, task(), error));
    }

    @Override
    public Mono<Void> closeIo(String execId) {
        return Mono.defer(() -> {
            ProcessStdio stdio = stdios.get(execId);
            if (stdio != null) {
                stdio.closeStdin();
            }
            return call("close stdin of", "CloseIO",
                    CloseIORequest.newBuilder().setId(id()).setExecId(execId).setStdin(true).build(), Empty.parser())
                    .then();
        });
    }

    /** The caller's stdin publisher ended: tell the shim, as containerd clients do with their stdin closer. */
    private void endOfStdin(String execId) {
        closeIo(execId).subscribe(done -> {}, error ->
                log.debug("closing stdin of {} {} after its end: {}", task(), execId, error.toString()));
    }

    @Override
    public Mono<Void> pause() {
        return call("pause", "Pause", PauseRequest.newBuilder().setId(id()).build(), Empty.parser()).then();
    }

    @Override
    public Mono<Void> resume() {
        return call("resume", "Resume", ResumeRequest.newBuilder().setId(id()).build(), Empty.parser()).then();
    }

    @Override
    public Mono<Void> update(byte[] linuxResources) {
        return call("update", "Update", UpdateTaskRequest.newBuilder().setId(id())
                .setResources(Any.newBuilder().setTypeUrl(RESOURCES_TYPE).setValue(ByteString.copyFrom(linuxResources)))
                .build(), Empty.parser()).then();
    }

    @Override
    public Mono<Stats> stats() {
        return call("get stats of", "Stats", StatsRequest.newBuilder().setId(id()).build(), StatsResponse.parser())
                .map(stats -> new Stats(stats.getStats().getTypeUrl(), stats.getStats().getValue().toByteArray()));
    }

    @Override
    public Mono<Void> checkpoint(Path imagePath, boolean exit) {
        Any options = Any.newBuilder().setTypeUrl("containerd.runc.v1.CheckpointOptions")
                .setValue(CheckpointOptions.newBuilder().setExit(exit).setImagePath(imagePath.toString()).build()
                        .toByteString())
                .build();
        return call("checkpoint", "Checkpoint", CheckpointTaskRequest.newBuilder().setId(id())
                .setPath(imagePath.toString()).setOptions(options).build(), Empty.parser()).then();
    }

    @Override
    public Mono<Void> shutdown() {
        return Mono.defer(() -> {
            if (initTracked) {
                return Mono.error(new FailedPreconditionException("shutdown " + task()
                        + ": the task still exists; delete it first (the shim ignores shutdown until then)"));
            }
            ending.set(true);
            claims.release(bundle.path(), this);
            TtrpcConnection current = connection;
            // Done once the shim process is gone (and reaped, if it is our child), not merely disconnected.
            return current.call(TASK, "Shutdown", ShutdownRequest.newBuilder().setId(id()).build(), Empty.parser(),
                            callOptions)
                    .onErrorResume(error -> Mono.empty())
                    .then(Mono.when(current.onClose(), shimGone)
                            .timeout(SHUTDOWN_TIMEOUT, Mono.<Void>empty(), resources.io()))
                    .then(Mono.<Void>fromRunnable(this::releaseAll).subscribeOn(resources.io()))
                    .then(Mono.<Void>fromCallable(() -> {
                        ShimRecord.remove(bundle.workDir());
                        return null;
                    }).subscribeOn(resources.io()));
        });
    }

    /** Detaches: the shim and its task keep running, and {@code connect()} finds them again. */
    @Override
    public Mono<Void> close() {
        return Mono.defer(() -> {
            ending.set(true);
            claims.release(bundle.path(), this);
            // Detaching drops our ends of the process's FIFOs too: streams do not survive a detach.
            return connection.disposeLater().then(Mono.<Void>fromRunnable(this::releaseAll)
                    .subscribeOn(resources.io()));
        });
    }

    @Override
    public Flux<Envelope> events() {
        return TaskEvents.of(exchange, namespace(), id());
    }

    /**
     * Called once the connection closed. Never a death by itself: a plugin stop closes it too, and a shim may drop a
     * connection and live on. The shim died only if its process is gone within {@link #DEATH_GRACE} and its socket
     * file is still there (a shim that another client shut down removes its socket before it exits); otherwise
     * this client is detached (calls fail with {@link UnavailableException}) and no longer answers for the shim.
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
                    log.info("the shim of {} (pid {}) was shut down by another client", task(), shimPid);
                    releaseDetached();
                }).subscribeOn(resources.io()))
                .doFinally(signal -> resources.untrack(verdict))
                .subscribe(done -> {}, error -> {
                    if (error instanceof TimeoutException) {
                        log.info("the connection to the shim of {} (pid {}) closed while the shim lives; detached",
                                task(), shimPid);
                        resources.io().schedule(this::releaseDetached);
                    } else if (error instanceof UnavailableException) {
                        // The runtime is stopping: its exit monitor no longer watches the shim. A detach too.
                        log.debug("{}: {}", task(), error.getMessage());
                    } else {
                        log.warn("cleanup after the death of the shim of {} failed", task(), error);
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
            log.warn("the shim of {} (pid {}) died; cleaning up", task(), shimPid);
            claims.taskGone(bundle.path());
            // The shim's part runs once however many clients of this runtime were attached to it; each client
            // then lets go of its own readers and runs its own exit handler.
            return claims.deathCleanup(bundle.path(), shimPid, () -> Mono
                            .<Void>fromRunnable(this::reapInitWhenKilled)
                            .then(Mono.fromCallable(this::runShimDelete))
                            .flatMap(this::publishDeadTask)
                            .then(Mono.<Void>fromRunnable(() -> {
                                try {
                                    Files.deleteIfExists(socket);
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
            log.debug("init {} of {} is not ours to reap: {}", initPid, task(), e.toString());
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
        Mono<Void> exit = initExitSeen ? Mono.empty()
                : exchange.publish(namespace(), "/tasks/exit", new TaskEvent.TaskExit(id(), id(), pid, status,
                        exitedAt));
        return exit.then(exchange.publish(namespace(), "/tasks/delete", new TaskEvent.TaskDelete(id(), pid, status,
                        exitedAt)))
                .onErrorResume(error -> {
                    log.warn("could not publish the end of {} after its shim died", task(), error);
                    return Mono.empty();
                });
    }

    private void runExitHandler() {
        if (connection == null) {
            return; // never attached: the caller gets the error instead of an exit notice
        }
        try {
            exitHandler.accept(new ShimExit(namespace(), id(), shimPid));
        } catch (RuntimeException e) {
            log.warn("the exit handler for {} failed", task(), e);
        }
    }

    /** Runs the shim binary's {@code delete} (= {@code runc delete --force}); blocking. */
    private Optional<DeleteResponse> runShimDelete() {
        try {
            ShimCommand.Result result = command.delete();
            if (result.exitCode() != 0) {
                log.warn("shim delete for {} exited {}: {}", task(), result.exitCode(), result.stderr());
                return Optional.empty();
            }
            return Optional.of(DeleteResponse.parseFrom(result.stdout()));
        } catch (IOException | RuntimeException e) {
            log.warn("shim delete for {} failed", task(), e);
            return Optional.empty();
        }
    }

    /** A detached client answers for nothing: its claim, FIFO readers and watches go, as on {@link #close()}. */
    private void releaseDetached() {
        ending.set(true);
        claims.release(bundle.path(), this);
        releaseAll();
    }

    private void releaseAll() {
        claims.detached(bundle.path(), this);
        for (String process : stdios.keySet()) {
            ProcessStdio stdio = stdios.remove(process);
            if (stdio != null) {
                stdio.release();
            }
        }
        FifoPoller.FifoStream current = shimLog;
        if (current != null) {
            current.discard();
        }
        Disposable watch = exitWatch;
        if (watch != null) {
            resources.untrack(watch);
        }
    }

    private <T> Mono<T> call(String action, String method, MessageLite request, Parser<T> parser) {
        return call(action, method, request, parser, callOptions);
    }

    private <T> Mono<T> call(String action, String method, MessageLite request, Parser<T> parser,
            CallOptions options) {
        return Mono.defer(() -> connection.call(TASK, method, request, parser, options))
                .onErrorMap(error -> mapError(action, error));
    }

    private Throwable mapError(String action, Throwable error) {
        if (error instanceof TtrpcClosedException closed) {
            return deadShimCleaned.get()
                    ? new ShimException(action + " " + task() + ": its shim died; the task was cleaned up", closed)
                    : new UnavailableException(action + " " + task() + ": detached from its shim (pid " + shimPid
                            + "); connect() again to reach it", closed);
        }
        return ShimErrors.map(action, task(), error);
    }

    private Path ioDir() {
        return bundle.workDir().resolve("io");
    }

    private String task() {
        return "task " + namespace() + "/" + id();
    }

    private static String execIdOf(Any info) {
        if (!info.getTypeUrl().equals("containerd.runc.v1.ProcessDetails")) {
            return "";
        }
        try {
            return ProcessDetails.parseFrom(info.getValue()).getExecId();
        } catch (InvalidProtocolBufferException e) {
            return "";
        }
    }

    private static TaskState taskState(StateResponse state) {
        TaskState.Status status = switch (state.getStatus()) {
            case CREATED -> TaskState.Status.CREATED;
            case RUNNING -> TaskState.Status.RUNNING;
            case STOPPED -> TaskState.Status.STOPPED;
            case PAUSED -> TaskState.Status.PAUSED;
            case PAUSING -> TaskState.Status.PAUSING;
            default -> TaskState.Status.UNKNOWN;
        };
        Optional<Instant> exitedAt = state.hasExitedAt()
                && state.getExitedAt().getSeconds() != TaskEvents.GO_ZERO_TIME_SECONDS
                ? Optional.of(TaskEvents.instant(state.getExitedAt())) : Optional.empty();
        return new TaskState(state.getId(), state.getExecId(), state.getPid(), status, state.getExitStatus(),
                exitedAt);
    }
}
