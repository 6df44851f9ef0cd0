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
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.RuntimeResources;
import org.shimmer.runtime.linux.bundle.Specs;
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
import org.shimmer.runtime.linux.stdio.FifoPoller;
import org.shimmer.runtime.linux.stdio.ProcessStdio;
import org.shimmer.runtime.linux.ttrpc.CallOptions;
import org.shimmer.runtime.linux.ttrpc.TtrpcConnection;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ProcessInfo;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimExit;
import org.shimmer.runtime.shim.Stats;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.Disposable;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * The task API of a running {@code containerd-shim-runc-v2}, over ttRPC.
 *
 * <p>Invariants: the init task is "tracked" from a successful create until its delete; when the shim dies while
 * a task is tracked and no exit was seen, one synthetic {@code /tasks/exit} is published (the shim's own
 * {@code delete} reports 137, as containerd's dead-shim cleanup does); the exit handler runs exactly once, after
 * that cleanup; a failed create never leaves a runc container behind (the shim creates it before setting up its
 * IO and does not clean it up on failure).
 */
final class RemoteShimClient implements ShimClient {

    static final String TASK = "containerd.task.v2.Task";
    static final String PROCESS_SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Process";
    static final String RESOURCES_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

    /** Delete waits this long for output nobody consumes before it releases the FIFOs anyway. */
    static final Duration DRAIN_TIMEOUT = Duration.ofSeconds(5);

    /** Shutdown waits this long for the shim to close the connection. */
    static final Duration SHUTDOWN_TIMEOUT = Duration.ofSeconds(5);

    /** Wait has no deadline of its own: a process may run for a long time. */
    static final Duration WAIT_TIMEOUT = Duration.ofDays(3650);

    private static final Logger log = LoggerFactory.getLogger(RemoteShimClient.class);

    private final Bundle bundle;
    private final ShimCommand command;
    private final Path socket;
    private final RuntimeResources resources;
    private final EventExchange exchange;
    private final Any runcOptions;
    private final Consumer<ShimExit> exitHandler;
    private final CallOptions callOptions;
    private final Map<String, ProcessStdio> stdios = new ConcurrentHashMap<>();
    private final AtomicBoolean ending = new AtomicBoolean();
    private final AtomicBoolean exitHandled = new AtomicBoolean();
    private volatile TtrpcConnection connection;
    private volatile FifoPoller.FifoStream shimLog;
    private volatile Disposable exitWatch;
    private volatile int shimPid;
    private volatile int initPid;
    private volatile boolean initTracked;
    private volatile boolean initExitSeen;

    RemoteShimClient(Bundle bundle, ShimCommand command, Path socket, RuntimeResources resources,
            EventExchange exchange, Any runcOptions, Consumer<ShimExit> exitHandler) {
        this.bundle = bundle;
        this.command = command;
        this.socket = socket;
        this.resources = resources;
        this.exchange = exchange;
        this.runcOptions = runcOptions;
        this.exitHandler = exitHandler;
        this.callOptions = CallOptions.defaults().withNamespace(bundle.namespace());
    }

    /** Takes over a connected shim; {@code log} is its log FIFO, read by us, or null. */
    void attach(TtrpcConnection connection, int shimPid, FifoPoller.FifoStream shimLog) {
        this.connection = connection;
        this.shimPid = shimPid;
        this.shimLog = shimLog;
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
        return Mono.fromCallable(() -> ProcessStdio.prepare(options.stdio(), ioDir(), id(), resources.poller(),
                        resources.io()))
                .subscribeOn(resources.io())
                .flatMap(stdio -> {
                    CreateTaskRequest.Builder request = CreateTaskRequest.newBuilder()
                            .setId(id())
                            .setBundle(bundle.path().toString())
                            .setStdin(stdio.stdin())
                            .setStdout(stdio.stdout())
                            .setStderr(stdio.stderr())
                            .setOptions(runcOptions);
                    for (org.shimmer.runtime.shim.Mount mount : options.rootfs()) {
                        request.addRootfs(org.shimmer.runtime.linux.shim.proto.Mount.newBuilder()
                                .setType(mount.type()).setSource(mount.source()).addAllOptions(mount.options()));
                    }
                    return call("create", "Create", request.build(), CreateTaskResponse.parser())
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
                                        removeLeakedContainer();
                                    })
                                    .subscribeOn(resources.io())
                                    .then(Mono.error(error)));
                })
                .onErrorMap(error -> ShimErrors.map("create", task(), error, bundle.path(), bundle.workDir()));
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
                WaitResponse.parser(), callOptions.withTimeout(WAIT_TIMEOUT))
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
                    }
                    ProcessStdio stdio = stdios.remove(execId);
                    Mono<Void> drained = stdio != null ? stdio.drained(DRAIN_TIMEOUT) : Mono.empty();
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
                                .then(Mono.error(error))))
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
            TtrpcConnection current = connection;
            return current.call(TASK, "Shutdown", ShutdownRequest.newBuilder().setId(id()).build(), Empty.parser(),
                            callOptions)
                    .onErrorResume(error -> Mono.empty())
                    .then(current.onClose().timeout(SHUTDOWN_TIMEOUT, Mono.<Void>empty(), resources.io()))
                    .then(Mono.<Void>fromRunnable(this::releaseAll).subscribeOn(resources.io()))
                    .then(Mono.<Void>fromCallable(() -> {
                        ShimRecord.remove(bundle.workDir());
                        return null;
                    }).subscribeOn(resources.io()));
        });
    }

    @Override
    public Mono<Void> close() {
        return Mono.defer(() -> {
            ending.set(true);
            // Detaching drops our ends of the process's FIFOs too: streams do not survive a detach.
            return connection.disposeLater().then(Mono.<Void>fromRunnable(this::releaseAll)
                    .subscribeOn(resources.io()));
        });
    }

    @Override
    public Flux<Envelope> events() {
        return TaskEvents.of(exchange, namespace(), id());
    }

    /** Called once the connection closed; a close nobody asked for means the shim died. */
    void onConnectionClosed() {
        if (ending.get()) {
            return;
        }
        Mono.fromRunnable(this::cleanUpDeadShim).subscribeOn(resources.io()).subscribe(done -> {}, error ->
                log.warn("cleanup after the death of the shim of {} failed", task(), error));
    }

    /**
     * containerd's cleanup after a dead shim: the shim's own {@code delete} kills and removes the container, a
     * synthetic exit stands in for the one the dead shim cannot send, the socket goes, then the handler runs.
     */
    void cleanUpDeadShim() {
        if (!exitHandled.compareAndSet(false, true)) {
            return;
        }
        log.warn("the shim of {} (pid {}) died; cleaning up", task(), shimPid);
        Optional<DeleteResponse> deleted = runShimDelete();
        if (initTracked && !initExitSeen) {
            int pid = deleted.map(DeleteResponse::getPid).filter(p -> p != 0).orElse(initPid);
            int status = deleted.map(DeleteResponse::getExitStatus).orElse(137);
            Instant exitedAt = deleted.filter(DeleteResponse::hasExitedAt)
                    .map(d -> TaskEvents.instant(d.getExitedAt())).orElseGet(Instant::now);
            exchange.publish(namespace(), "/tasks/exit", new TaskEvent.TaskExit(id(), id(), pid, status, exitedAt))
                    .onErrorResume(error -> Mono.empty())
                    .block(Duration.ofSeconds(5));
        }
        initTracked = false;
        try {
            Files.deleteIfExists(socket);
            ShimRecord.remove(bundle.workDir());
        } catch (IOException e) {
            log.warn("could not remove the dead shim's socket {}", socket, e);
        }
        releaseAll();
        if (connection == null) {
            return; // never attached: the caller gets the error instead of an exit notice
        }
        try {
            exitHandler.accept(new ShimExit(namespace(), id(), shimPid));
        } catch (RuntimeException e) {
            log.warn("the exit handler for {} failed", task(), e);
        }
    }

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

    /** After a failed create: the shim may have made the runc container before failing; remove it. */
    private void removeLeakedContainer() {
        runShimDelete();
    }

    private void releaseAll() {
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
                .onErrorMap(error -> ShimErrors.map(action, task(), error));
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
