package org.shimmer.containerd.task;

import com.google.protobuf.Any;
import com.google.protobuf.Empty;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BiFunction;
import java.util.function.Function;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.shim.TaskEvents;
import org.shimmer.runtime.linux.shim.local.LocalShims;
import org.shimmer.runtime.linux.shim.proto.CheckpointOptions;
import org.shimmer.runtime.linux.shim.proto.CheckpointTaskRequest;
import org.shimmer.runtime.linux.shim.proto.CloseIORequest;
import org.shimmer.runtime.linux.shim.proto.ConnectRequest;
import org.shimmer.runtime.linux.shim.proto.ConnectResponse;
import org.shimmer.runtime.linux.shim.proto.CreateTaskRequest;
import org.shimmer.runtime.linux.shim.proto.CreateTaskResponse;
import org.shimmer.runtime.linux.shim.proto.DeleteRequest;
import org.shimmer.runtime.linux.shim.proto.DeleteResponse;
import org.shimmer.runtime.linux.shim.proto.ExecProcessRequest;
import org.shimmer.runtime.linux.shim.proto.KillRequest;
import org.shimmer.runtime.linux.shim.proto.Options;
import org.shimmer.runtime.linux.shim.proto.PauseRequest;
import org.shimmer.runtime.linux.shim.proto.PidsRequest;
import org.shimmer.runtime.linux.shim.proto.PidsResponse;
import org.shimmer.runtime.linux.shim.proto.ProcessDetails;
import org.shimmer.runtime.linux.shim.proto.ProcessInfo;
import org.shimmer.runtime.linux.shim.proto.ResizePtyRequest;
import org.shimmer.runtime.linux.shim.proto.ResumeRequest;
import org.shimmer.runtime.linux.shim.proto.ShutdownRequest;
import org.shimmer.runtime.linux.shim.proto.StartRequest;
import org.shimmer.runtime.linux.shim.proto.StartResponse;
import org.shimmer.runtime.linux.shim.proto.StateRequest;
import org.shimmer.runtime.linux.shim.proto.StateResponse;
import org.shimmer.runtime.linux.shim.proto.StatsRequest;
import org.shimmer.runtime.linux.shim.proto.StatsResponse;
import org.shimmer.runtime.linux.shim.proto.Status;
import org.shimmer.runtime.linux.shim.proto.TaskIO;
import org.shimmer.runtime.linux.shim.proto.UpdateTaskRequest;
import org.shimmer.runtime.linux.shim.proto.WaitRequest;
import org.shimmer.runtime.linux.shim.proto.WaitResponse;
import org.shimmer.runtime.linux.ttrpc.ServerCall;
import org.shimmer.runtime.linux.ttrpc.StatusCode;
import org.shimmer.runtime.linux.ttrpc.TtrpcService;
import org.shimmer.runtime.linux.ttrpc.TtrpcStatusException;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import org.shimmer.runtime.shim.TerminalSize;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;

/**
 * containerd's task API ({@code containerd.task.v2.Task}) for every task of one namespace, each run by the local
 * shim engine on containerd's bundle. containerd dials this daemon's one socket once per task; any connection may
 * address any task, as the calls name it.
 *
 * <p>Invariant: a task is in {@link #tasks} from the start of its create until its init's delete completed, and
 * its bundle holds the {@link TaskMarker} for exactly as long as something of it may exist on the host.
 */
public final class TaskService {

    /** The service name containerd calls. */
    public static final String SERVICE = "containerd.task.v2.Task";

    /** The default runc root, as containerd's runc shim has it; the namespace is a directory below. */
    public static final String DEFAULT_RUNC_ROOT = "/run/containerd/runc";

    private static final Logger log = LoggerFactory.getLogger(TaskService.class);
    private static final String RUNC_OPTIONS_TYPE = "containerd.runc.v1.Options";
    private static final String PROCESS_DETAILS_TYPE = "containerd.runc.v1.ProcessDetails";

    private final String namespace;
    private final RuntimeResources resources;
    private final LocalShims shims;
    private final EventExchange exchange;
    /** Each task by id, as soon as its create began: a call for one being created waits for its create. */
    private final Map<String, Mono<Task>> tasks = new ConcurrentHashMap<>();
    private volatile long lastCallNanos = System.nanoTime();
    /**
     * The stdio each task's create named, from its create's start until its end: its {@code /tasks/create} tells
     * them, as runc's shim's does (the local shim's event has no stdio).
     */
    private final Map<String, TaskIO> createIo = new ConcurrentHashMap<>();

    /** One task: its bundle, its local shim once made, and the streams containerd named for each process. */
    private record Task(String id, Path bundle, ShimClient client, Map<String, Streams> streams,
            AtomicReference<OomWatch> oom) {}

    /** The streams containerd named for a process, and its terminal if it has one. */
    private record Streams(String stdin, String stdout, String stderr, ContainerdTerminal terminal) {
        boolean hasTerminal() {
            return terminal != null;
        }

        void closeStdin() {
            if (terminal != null) {
                terminal.closeStdin();
            }
        }

        /** The process was deleted: what its terminal holds goes. */
        void release() {
            if (terminal != null) {
                terminal.release();
            }
        }
    }

    public TaskService(String namespace, RuntimeResources resources, LocalShims shims, EventExchange exchange) {
        this.namespace = namespace;
        this.resources = resources;
        this.shims = shims;
        this.exchange = exchange;
    }

    /** How many tasks exist or are being created. */
    public int tasks() {
        return tasks.size();
    }

    /** The stdio the create of task {@code id} named, while the task exists. */
    public Optional<TaskIO> createIo(String id) {
        return Optional.ofNullable(createIo.get(id));
    }

    /** When the last call arrived ({@link System#nanoTime()}). */
    public long lastCallNanos() {
        return lastCallNanos;
    }

    /** The ttRPC service. */
    public TtrpcService service() {
        return TtrpcService.named(SERVICE)
                .method("Create", CreateTaskRequest.parser(), handler(this::create))
                .method("Start", StartRequest.parser(), handler(this::start))
                .method("Delete", DeleteRequest.parser(), handler(this::delete))
                .method("Exec", ExecProcessRequest.parser(), handler(this::exec))
                .method("State", StateRequest.parser(), handler(this::state))
                .method("Wait", WaitRequest.parser(), handler(this::await))
                .method("Kill", KillRequest.parser(), handler(this::kill))
                .method("Pids", PidsRequest.parser(), handler(this::pids))
                .method("Pause", PauseRequest.parser(), handler(request -> task(request.getId())
                        .flatMap(task -> task.client().pause()).thenReturn(Empty.getDefaultInstance())))
                .method("Resume", ResumeRequest.parser(), handler(request -> task(request.getId())
                        .flatMap(task -> task.client().resume()).thenReturn(Empty.getDefaultInstance())))
                .method("CloseIO", CloseIORequest.parser(), handler(request -> task(request.getId())
                        .flatMap(task -> task.client().closeIo(request.getExecId()).then(Mono.fromRunnable(() ->
                                Optional.ofNullable(task.streams().get(request.getExecId()))
                                        .ifPresent(Streams::closeStdin))))
                        .thenReturn(Empty.getDefaultInstance())))
                .method("ResizePty", ResizePtyRequest.parser(), handler(this::resize))
                .method("Update", UpdateTaskRequest.parser(), handler(request -> task(request.getId())
                        .flatMap(task -> task.client().update(request.getResources().getValue().toByteArray()))
                        .thenReturn(Empty.getDefaultInstance())))
                .method("Stats", StatsRequest.parser(), handler(request -> task(request.getId())
                        .flatMap(task -> task.client().stats())
                        .map(stats -> StatsResponse.newBuilder().setStats(ContainerdMetrics.of(stats)).build())))
                .method("Checkpoint", CheckpointTaskRequest.parser(), handler(this::checkpoint))
                .method("Connect", ConnectRequest.parser(), handler(this::connect))
                .method("Shutdown", ShutdownRequest.parser(), handler(request -> Mono.just(Empty.getDefaultInstance())));
    }

    /**
     * Creates a task. Once begun it runs to its end whoever cancels it (containerd's deadline): a create cut short
     * could leave runc's container or a mount behind a marker already gone. If containerd left, it deletes the task
     * (its cleanup calls Delete, which waits for the create); calls for the task meanwhile wait for it too, as
     * runc's shim makes them wait on its lock.
     */
    private Mono<CreateTaskResponse> create(CreateTaskRequest request) {
        return Mono.defer(() -> {
            String id = Identifiers.requireValid("container id", request.getId());
            if (!request.getCheckpoint().isEmpty()) {
                throw new TtrpcStatusException(StatusCode.UNIMPLEMENTED, "create " + id
                        + ": restoring from a checkpoint is not supported");
            }
            boolean terminal = request.getTerminal();
            Stdio streams = terminal ? null
                    : ContainerdStdio.of(request.getStdin(), request.getStdout(), request.getStderr());
            RuncOptions options = runcOptions(request.getOptions());
            List<Mount> rootfs = request.getRootfsList().stream()
                    .map(mount -> new Mount(mount.getType(), mount.getSource(), mount.getOptionsList())).toList();
            Path bundlePath = Path.of(request.getBundle());
            Sinks.One<Task> made = Sinks.one();
            Mono<Task> pending = made.asMono();
            if (tasks.putIfAbsent(id, pending) != null) {
                throw new TtrpcStatusException(StatusCode.ALREADY_EXISTS, "create " + id + ": task already exists");
            }
            createIo.put(id, TaskIO.newBuilder().setStdin(request.getStdin()).setStdout(request.getStdout())
                    .setStderr(request.getStderr()).setTerminal(terminal).build());
            Map<String, Streams> processes = new ConcurrentHashMap<>();
            AtomicReference<OomWatch> oom = new AtomicReference<>();
            Mono<CreateTaskResponse> work = Mono.fromCallable(() -> {
                        ContainerdBundle bundle = ContainerdBundle.at(id, namespace, bundlePath);
                        TaskMarker.of(options).write(bundlePath);
                        ContainerdStdio.createLogFiles(request.getStdout(), request.getStderr());
                        return bundle;
                    })
                    .subscribeOn(resources.io())
                    .flatMap(bundle -> shims.newShimClient(bundle, new OomBeforeExit(exchange, id, oom), options))
                    .flatMap(client -> withStdio(terminal, request.getStdin(), streams, (stdio, opened) ->
                                    client.create(new CreateOptions(rootfs, stdio)).map(io -> {
                                        if (opened != null) {
                                            opened.copyOutput(io.stdout(), request.getStdout(), resources.io());
                                        }
                                        processes.put(ShimClient.INIT, new Streams(request.getStdin(),
                                                request.getStdout(), request.getStderr(), opened));
                                        return io;
                                    }))
                            .map(io -> {
                                watchOom(id, io.pid()).ifPresent(oom::set);
                                Task task = new Task(id, bundlePath, client, processes, oom);
                                tasks.replace(id, pending, Mono.just(task));
                                made.tryEmitValue(task);
                                return CreateTaskResponse.newBuilder().setPid(io.pid()).build();
                            })
                            .onErrorResume(failed -> client.shutdown().onErrorResume(ignored -> Mono.empty())
                                    .then(Mono.error(failed))))
                    .doOnError(failed -> {
                        tasks.remove(id, pending);
                        createIo.remove(id);
                        made.tryEmitError(new NotFoundException("task " + id + " not found: its create failed"));
                        forget(bundlePath);
                    });
            return Mono.fromFuture(work::toFuture, true);
        });
    }

    /**
     * Runs {@code make} with the process's stdio: {@code streams} as they are, or a terminal whose stdin FIFO is
     * opened first (on io) and released if the process was not made.
     */
    private Mono<ProcessIo> withStdio(boolean terminal, String stdinPath, Stdio streams,
            BiFunction<Stdio, ContainerdTerminal, Mono<ProcessIo>> make) {
        if (!terminal) {
            return make.apply(streams, null);
        }
        return Mono.usingWhen(
                Mono.fromCallable(() -> ContainerdTerminal.open(resources.poller(), stdinPath))
                        .subscribeOn(resources.io()),
                opened -> make.apply(opened.stdio(), opened),
                opened -> Mono.empty(),
                (opened, error) -> Mono.fromRunnable(opened::discard),
                opened -> Mono.fromRunnable(opened::discard));
    }

    /** Removes the marker of a task whose create failed: the create undid what it made. */
    private void forget(Path bundle) {
        resources.io().schedule(() -> {
            try {
                TaskMarker.remove(bundle);
            } catch (java.io.IOException e) {
                log.warn("could not remove the task marker of {}", bundle, e);
            }
        });
    }

    private static RuncOptions runcOptions(Any any) {
        RuncOptions options = RuncOptions.defaults().withRuntimeRoot(DEFAULT_RUNC_ROOT);
        if (any == null || any.getTypeUrl().isEmpty()) {
            return options;
        }
        if (!any.getTypeUrl().endsWith(RUNC_OPTIONS_TYPE)) {
            throw new TtrpcStatusException(StatusCode.INVALID_ARGUMENT, "options of type " + any.getTypeUrl()
                    + ": only " + RUNC_OPTIONS_TYPE + " is understood");
        }
        Options runc;
        try {
            runc = Options.parseFrom(any.getValue());
        } catch (InvalidProtocolBufferException e) {
            throw new TtrpcStatusException(StatusCode.INVALID_ARGUMENT, "options of type " + any.getTypeUrl()
                    + " cannot be read: " + e.getMessage());
        }
        if (!runc.getRoot().isEmpty()) {
            options = options.withRuntimeRoot(runc.getRoot());
        }
        return options.withBinaryName(runc.getBinaryName()).withSystemdCgroup(runc.getSystemdCgroup())
                .withCriuPath(runc.getCriuPath());
    }

    private Mono<StartResponse> start(StartRequest request) {
        return task(request.getId()).flatMap(task -> task.client().start(request.getExecId()))
                .map(pid -> StartResponse.newBuilder().setPid(pid).build());
    }

    /**
     * Deletes a process; the init's delete ends the task: its shim, its entry and its marker. Once begun it runs
     * to its end whoever cancels (containerd's deadline): a task half deleted would keep its entry and marker, and
     * the daemon would never idle out. An init the local shim no longer has is forgotten here too.
     */
    private Mono<DeleteResponse> delete(DeleteRequest request) {
        String execId = request.getExecId();
        Mono<ExitStatus> deleted = task(request.getId()).flatMap(task -> task.client().delete(execId)
                .onErrorResume(NotFoundException.class, gone -> execId.isEmpty()
                        ? end(task).then(Mono.error(gone)) : Mono.error(gone))
                .flatMap(exit -> {
                    if (!execId.isEmpty()) {
                        Optional.ofNullable(task.streams().remove(execId)).ifPresent(Streams::release);
                        return Mono.just(exit);
                    }
                    return end(task).thenReturn(exit);
                }));
        return Mono.fromFuture(() -> deleted.toFuture(), true)
                .map(exit -> DeleteResponse.newBuilder().setPid(exit.pid()).setExitStatus(exit.status())
                        .setExitedAt(TaskEvents.timestamp(exit.exitedAt())).build());
    }

    /** Watches the task's memory cgroup for OOM kills, published as {@code /tasks/oom}; none if it cannot. */
    private Optional<OomWatch> watchOom(String id, int pid) {
        try {
            return OomWatch.start(resources.pollLoop(), resources.io(), pid, () -> exchange.publish(namespace,
                    "/tasks/oom", new TaskEvent.TaskOom(id)).subscribe(published -> {}, error -> log.warn(
                    "the OOM event of {} was not published", id, error)));
        } catch (IOException | RuntimeException e) {
            log.warn("the memory cgroup of task {} (pid {}) is not watched for OOM kills: {}", id, pid,
                    e.toString());
            return Optional.empty();
        }
    }

    /** The init is gone with its container: the task's shim ends, then its entry and marker. */
    private Mono<Void> end(Task task) {
        return task.client().shutdown().onErrorResume(ignored -> Mono.empty())
                .then(Mono.fromCallable(() -> {
                    task.streams().values().forEach(Streams::release);
                    Optional.ofNullable(task.oom().getAndSet(null)).ifPresent(OomWatch::close);
                    TaskMarker.remove(task.bundle());
                    createIo.remove(task.id());
                    tasks.remove(task.id());
                    return true;
                }).subscribeOn(resources.io()))
                .then();
    }

    private Mono<Empty> exec(ExecProcessRequest request) {
        return task(request.getId()).flatMap(task -> {
            boolean terminal = request.getTerminal();
            Stdio stdio = terminal ? null
                    : ContainerdStdio.of(request.getStdin(), request.getStdout(), request.getStderr());
            return withStdio(terminal, request.getStdin(), stdio, (chosen, opened) -> task.client()
                    .exec(request.getExecId(), request.getSpec().getValue().toByteArray(), chosen)
                    .doOnNext(io -> {
                        if (opened != null) {
                            opened.copyOutput(io.stdout(), request.getStdout(), resources.io());
                        }
                        task.streams().put(request.getExecId(), new Streams(request.getStdin(),
                                request.getStdout(), request.getStderr(), opened));
                    }));
        }).thenReturn(Empty.getDefaultInstance());
    }

    /**
     * A terminal's new size; one that exited keeps its own. A client whose own terminal has no size (0×0: {@code ctr} under {@code script}, or
     * with no terminal at all) sends that: the terminal keeps the size it has, as under runc's shim, which
     * accepts it, and no error is logged for what is no one's mistake. A process with no terminal has nothing to
     * resize: runc's shim answers success, where this answered {@code FAILED_PRECONDITION} while it ran.
     */
    private Mono<Empty> resize(ResizePtyRequest request) {
        String execId = request.getExecId();
        return task(request.getId()).flatMap(task -> request.getWidth() == 0 || request.getHeight() == 0
                        || !Optional.ofNullable(task.streams().get(execId)).map(Streams::hasTerminal).orElse(true)
                        ? task.client().state(execId).then()
                        : task.client().resize(execId, new TerminalSize(request.getWidth(), request.getHeight()))
                                // ctr resizes right after the start: a process that ended at once has a terminal
                                // until its delete under runc's shim, which takes the size; so do we, silently.
                                .onErrorResume(FailedPreconditionException.class, refused -> task.client()
                                        .state(execId).filter(state -> state.status() == TaskState.Status.STOPPED)
                                        .switchIfEmpty(Mono.error(refused)).then()))
                .thenReturn(Empty.getDefaultInstance());
    }

    private Mono<StateResponse> state(StateRequest request) {
        return task(request.getId()).flatMap(task -> task.client().state(request.getExecId()).map(state -> {
            Streams streams = Optional.ofNullable(task.streams().get(request.getExecId()))
                    .orElse(new Streams("", "", "", null));
            StateResponse.Builder response = StateResponse.newBuilder().setId(task.id())
                    .setBundle(task.bundle().toString()).setPid(state.pid()).setStatus(status(state.status()))
                    .setStdin(streams.stdin()).setStdout(streams.stdout()).setStderr(streams.stderr())
                    .setTerminal(streams.hasTerminal()).setExitStatus(state.exitStatus())
                    .setExecId(request.getExecId());
            state.exitedAt().ifPresent(at -> response.setExitedAt(TaskEvents.timestamp(at)));
            return response.build();
        }));
    }

    private static Status status(TaskState.Status status) {
        return switch (status) {
            case CREATED -> Status.CREATED;
            case RUNNING -> Status.RUNNING;
            case STOPPED -> Status.STOPPED;
            case PAUSED -> Status.PAUSED;
            case PAUSING -> Status.PAUSING;
            case UNKNOWN -> Status.UNKNOWN;
        };
    }

    private Mono<WaitResponse> await(WaitRequest request) {
        return task(request.getId()).flatMap(task -> task.client().awaitExit(request.getExecId()))
                .map(exit -> WaitResponse.newBuilder().setExitStatus(exit.status())
                        .setExitedAt(TaskEvents.timestamp(exit.exitedAt())).build());
    }

    private Mono<Empty> kill(KillRequest request) {
        return task(request.getId()).flatMap(task -> request.getSignal() == 0 ? exists(task, request)
                        : request.getExecId().isEmpty() ? task.client().kill(request.getSignal(), request.getAll())
                        : task.client().kill(request.getExecId(), request.getSignal()))
                .thenReturn(Empty.getDefaultInstance());
    }

    /**
     * Signal 0 (kill(2)'s check that a process is there): answered as runc's shim answers it, success while the
     * process may be signalled, {@code FAILED_PRECONDITION} for an exec not started, {@code NOT_FOUND} once it
     * finished (but for all of the task's processes, which runc signals anyway). The local shim refused it as an
     * invalid signal.
     */
    private Mono<Void> exists(Task task, KillRequest request) {
        String execId = request.getExecId();
        String process = (execId.isEmpty() ? "task " : "exec " + execId + " in task ") + namespace + "/" + task.id();
        return task.client().state(execId).flatMap(state -> {
            if (!execId.isEmpty() && state.status() == TaskState.Status.CREATED) {
                return Mono.error(new FailedPreconditionException("kill " + process + ": process not started"));
            }
            if (state.status() == TaskState.Status.STOPPED && !(execId.isEmpty() && request.getAll())) {
                return Mono.error(new NotFoundException("kill " + process + ": process already finished"));
            }
            return Mono.empty();
        });
    }

    private Mono<PidsResponse> pids(PidsRequest request) {
        return task(request.getId()).flatMapMany(task -> task.client().pids())
                .map(process -> {
                    ProcessInfo.Builder info = ProcessInfo.newBuilder().setPid(process.pid());
                    if (process.execId() != null && !process.execId().isEmpty()) {
                        info.setInfo(Any.newBuilder().setTypeUrl(PROCESS_DETAILS_TYPE).setValue(
                                ProcessDetails.newBuilder().setExecId(process.execId()).build().toByteString()));
                    }
                    return info.build();
                })
                .collectList()
                .map(processes -> PidsResponse.newBuilder().addAllProcesses(processes).build());
    }

    private Mono<Empty> checkpoint(CheckpointTaskRequest request) {
        return task(request.getId()).flatMap(task -> {
            boolean exit = false;
            if (request.hasOptions() && !request.getOptions().getValue().isEmpty()) {
                try {
                    exit = CheckpointOptions.parseFrom(request.getOptions().getValue()).getExit();
                } catch (InvalidProtocolBufferException e) {
                    return Mono.error(new TtrpcStatusException(StatusCode.INVALID_ARGUMENT, "checkpoint "
                            + task.id() + ": options of type " + request.getOptions().getTypeUrl()
                            + " cannot be read"));
                }
            }
            return task.client().checkpoint(Path.of(request.getPath()), exit);
        }).thenReturn(Empty.getDefaultInstance());
    }

    private Mono<ConnectResponse> connect(ConnectRequest request) {
        return task(request.getId()).flatMap(task -> task.client().state())
                .map(state -> ConnectResponse.newBuilder().setShimPid((int) ProcessHandle.current().pid())
                        .setTaskPid(state.pid()).setVersion("shimmer-v1").build());
    }

    /** The task named {@code id}, once its create has made it. */
    private Mono<Task> task(String id) {
        return Mono.defer(() -> {
            Mono<Task> task = tasks.get(id);
            return task != null ? task : Mono.error(new NotFoundException("task " + id + " not found"));
        });
    }

    private <Q extends MessageLite> BiFunction<ServerCall, Q, Mono<? extends MessageLite>> handler(
            Function<Q, Mono<? extends MessageLite>> handler) {
        return (call, request) -> {
            lastCallNanos = System.nanoTime();
            return Mono.defer(() -> handler.apply(request)).onErrorMap(TaskService::status);
        };
    }

    /** What containerd makes of an error: ttRPC's code for each of ours, the message as it is. */
    static Throwable status(Throwable error) {
        if (error instanceof TtrpcStatusException) {
            return error;
        }
        if (error instanceof ShimmerException typed) {
            StatusCode code = switch (typed.code()) {
                case NOT_FOUND -> StatusCode.NOT_FOUND;
                case ALREADY_EXISTS -> StatusCode.ALREADY_EXISTS;
                case FAILED_PRECONDITION -> StatusCode.FAILED_PRECONDITION;
                case INVALID_ARGUMENT -> StatusCode.INVALID_ARGUMENT;
                case UNAVAILABLE -> StatusCode.UNAVAILABLE;
                case DEADLINE_EXCEEDED -> StatusCode.DEADLINE_EXCEEDED;
                case RESOURCE_EXHAUSTED -> StatusCode.RESOURCE_EXHAUSTED;
                case INTERNAL -> StatusCode.UNKNOWN;
            };
            return new TtrpcStatusException(code, String.valueOf(error.getMessage()));
        }
        if (error instanceof IllegalArgumentException || error instanceof InvalidProtocolBufferException) {
            return new TtrpcStatusException(StatusCode.INVALID_ARGUMENT, String.valueOf(error.getMessage()));
        }
        log.debug("a task call failed", error);
        return new TtrpcStatusException(StatusCode.UNKNOWN, String.valueOf(error));
    }
}
