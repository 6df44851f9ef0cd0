package org.shimmer.runtime.linux.shim.remote;

import com.google.protobuf.Any;
import com.google.protobuf.Empty;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.linux.bundle.Specs;
import org.shimmer.runtime.linux.poll.FifoPoller;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.shim.Operations;
import org.shimmer.runtime.linux.shim.ProcessState;
import org.shimmer.runtime.linux.shim.ProcessStdio;
import org.shimmer.runtime.linux.shim.ProcessTable;
import org.shimmer.runtime.linux.shim.TaskEvents;
import org.shimmer.runtime.linux.shim.TaskProcess;
import org.shimmer.runtime.linux.shim.proto.CloseIORequest;
import org.shimmer.runtime.linux.shim.proto.CreateTaskResponse;
import org.shimmer.runtime.linux.shim.proto.DeleteRequest;
import org.shimmer.runtime.linux.shim.proto.DeleteResponse;
import org.shimmer.runtime.linux.shim.proto.KillRequest;
import org.shimmer.runtime.linux.shim.proto.PauseRequest;
import org.shimmer.runtime.linux.shim.proto.PidsRequest;
import org.shimmer.runtime.linux.shim.proto.PidsResponse;
import org.shimmer.runtime.linux.shim.proto.ResumeRequest;
import org.shimmer.runtime.linux.shim.proto.StartRequest;
import org.shimmer.runtime.linux.shim.proto.StartResponse;
import org.shimmer.runtime.linux.shim.proto.StateRequest;
import org.shimmer.runtime.linux.shim.proto.StateResponse;
import org.shimmer.runtime.linux.shim.proto.StatsRequest;
import org.shimmer.runtime.linux.shim.proto.StatsResponse;
import org.shimmer.runtime.linux.shim.proto.WaitRequest;
import org.shimmer.runtime.linux.shim.proto.WaitResponse;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.ttrpc.StatusCode;
import org.shimmer.runtime.linux.ttrpc.TtrpcClosedException;
import org.shimmer.runtime.linux.ttrpc.TtrpcConnection;
import org.shimmer.runtime.linux.ttrpc.TtrpcStatusException;
import org.shimmer.runtime.linux.ttrpc.TtrpcTimeoutException;
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
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * The task API of a running {@code containerd-shim-runc-v2}, over ttRPC ({@link ShimSession} owns the connection
 * and what its end means). The shim owns the processes' states; this client mirrors the processes it made in the
 * shared {@link TaskProcess} model, for their streams and to refuse what containerd's client-side contract refuses
 * (a second create, an exec id in use, a delete while a start is in flight) before anything reaches the shim.
 *
 * <p>Create is exclusive: this runtime's clients of a bundle take turns through {@link TaskClaims}, and Create is
 * sent only after the shim said it has no such task; the shim's {@code delete} after a failed create runs only
 * when this call's Create reached the shim (the shim creates the runc container before setting up its IO and does
 * not remove it on failure), never for a task someone else made.
 */
final class RemoteShimClient implements ShimClient {

    /**
     * How long a Create may take. Long: a Create that times out is followed by the shim's own delete (runc delete
     * --force), and one that merely ran slow on a loaded machine must not lose the container it was making.
     */
    static final Duration CREATE_TIMEOUT = Duration.ofMinutes(2);

    private static final Logger log = LoggerFactory.getLogger(RemoteShimClient.class);
    /** The shim decides whether a live process may go; only an operation of ours in flight is refused here. */
    private static final Set<ProcessState> SETTLED = Set.of(ProcessState.CREATED, ProcessState.RUNNING,
            ProcessState.PAUSED, ProcessState.STOPPED);

    private final Bundle bundle;
    private final RuntimeResources resources;
    private final EventExchange exchange;
    private final Any runcOptions;
    private final TaskClaims claims;
    private final ShimSession session;
    private final ProcessTable processes;

    RemoteShimClient(Bundle bundle, ShimCommand command, Path socket, RuntimeResources resources,
            EventExchange exchange, Any runcOptions, Consumer<ShimExit> exitHandler, TaskClaims claims) {
        this.bundle = bundle;
        this.resources = resources;
        this.exchange = exchange;
        this.runcOptions = runcOptions;
        this.claims = claims;
        this.processes = new ProcessTable(task());
        this.session = new ShimSession(bundle, command, socket, resources, exchange, exitHandler, claims, this);
    }

    ShimSession session() {
        return session;
    }

    int shimPid() {
        return session.shimPid();
    }

    /** The connection to the shim; tests cut it to play a connection lost while the shim lives. */
    TtrpcConnection connection() {
        return session.connection();
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
        return processes.reserve("create", "").flatMap(creating -> {
            // After the reservation: an abandoned create of this client has finished its undo by now.
            if (!claims.claim(bundle.path(), this)) {
                return undo(creating, Mono.empty()).then(Mono.error(new AlreadyExistsException("create " + task()
                        + ": already created, or being created, by another client of this runtime")));
            }
            TaskProcess init = creating.process();
            AtomicBoolean shimMayHaveIt = new AtomicBoolean();
            Mono<ProcessIo> work = noTaskYet()
                    .then(blocking(() -> prepare(init, options.stdio(), "create")))
                    .flatMap(stdio -> session.rawCall("Create", TaskMessages.create(id(), bundle.path(), options,
                                    stdio, runcOptions), CreateTaskResponse.parser(),
                                    session.callOptions().withTimeout(CREATE_TIMEOUT))
                            .doOnError(error -> shimMayHaveIt.set(createReachedShim(error)))
                            .doFinally(signal -> init.launched()))
                    .map(created -> {
                        init.pid(created.getPid());
                        session.trackInit(created.getPid(), false);
                        creating.commit(ProcessState.CREATED);
                        init.startStdin(() -> endOfStdin(""));
                        return init.io(created.getPid());
                    })
                    .onErrorResume(error -> undo(creating, shimMayHaveIt.get()
                                    ? blocking(session::runShimDelete) : Mono.empty())
                            .doFinally(signal -> claims.release(bundle.path(), this))
                            .then(Mono.error(createError(error))));
            return Operations.runToEnd(work, io -> undo(creating, deleteCall("delete", ""))
                    .doFinally(signal -> taskGone()));
        });
    }

    /** Fails with {@link AlreadyExistsException} unless the shim answers that it has no such task. */
    private Mono<Void> noTaskYet() {
        return state("")
                .flatMap(found -> Mono.<Void>error(new AlreadyExistsException("create " + task()
                        + ": the shim already has it (" + found.status() + ", pid " + found.pid() + ")")))
                .onErrorResume(NotFoundException.class, absent -> Mono.empty());
    }

    /**
     * Undoes a create or exec that failed or that nobody took: {@code first} (whatever the shim must forget),
     * then the streams and the reservation.
     */
    private Mono<Void> undo(TaskProcess.Transition creating, Mono<?> first) {
        creating.moveThrough(ProcessState.DELETING);
        TaskProcess process = creating.process();
        return first.onErrorResume(error -> Mono.empty()).then(blocking(() -> {
            process.release();
            return true;
        })).then().doFinally(signal -> {
            processes.remove(process);
            creating.commit(ProcessState.DELETED);
        });
    }

    private Mono<DeleteResponse> deleteCall(String action, String execId) {
        return session.call(action, "Delete", DeleteRequest.newBuilder().setId(id()).setExecId(execId).build(),
                DeleteResponse.parser());
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
        if (error instanceof ShimmerException typed) {
            return typed;
        }
        if (error instanceof TtrpcStatusException status && saysAlreadyExists(status)) {
            return new AlreadyExistsException("create " + task() + ": " + status.statusMessage(), status);
        }
        if (error instanceof TtrpcClosedException) {
            return session.mapError("create", error);
        }
        // runc's reason may be lost when it could not even log it: name a full file system the shim writes to.
        return ShimErrors.map("create", task(), error, bundle.path(), bundle.workDir());
    }

    private static boolean saysAlreadyExists(TtrpcStatusException status) {
        return status.statusMessage().contains("already exists");
    }

    private ProcessStdio prepare(TaskProcess process, Stdio stdio, String action) throws IOException {
        String name = process.execId().isEmpty() ? id() : process.execId();
        try {
            process.prepared(ProcessStdio.prepare(stdio, ioDir(), name, resources.poller(), resources.io()));
            return process.stdio();
        } catch (LinuxCalls.ErrnoException e) {
            if (e.errno() == LinuxCalls.EEXIST) {
                // Another process's FIFOs: left as they are.
                throw new AlreadyExistsException(action + " " + process.name() + ": its stdio FIFOs already exist in "
                        + ioDir(), e);
            }
            throw e;
        }
    }

    @Override
    public Mono<Integer> start(String execId) {
        return Mono.defer(() -> {
            Optional<TaskProcess> process = processes.find(execId);
            TaskProcess.Transition starting = process.map(p -> p.begin(startAction(execId), ProcessState.STARTING,
                    Set.of(ProcessState.CREATED))).orElse(null);
            Mono<Integer> work = session.call(startAction(execId), "Start", StartRequest.newBuilder().setId(id())
                            .setExecId(execId).build(), StartResponse.parser())
                    .map(StartResponse::getPid)
                    .doFinally(signal -> process.filter(p -> !execId.isEmpty()).ifPresent(TaskProcess::launched))
                    .doOnNext(pid -> process.ifPresent(p -> {
                        p.pid(pid);
                        starting.commit(ProcessState.RUNNING);
                        // The shim opens an exec's stdio only at Start: only now may its stdin be fed.
                        if (!execId.isEmpty()) {
                            p.startStdin(() -> endOfStdin(execId));
                        }
                    }))
                    .doFinally(signal -> {
                        if (starting != null) {
                            starting.close();
                        }
                    });
            return Operations.runToEnd(work);
        });
    }

    private static String startAction(String execId) {
        return execId.isEmpty() ? "start" : "start exec " + execId + " in";
    }

    @Override
    public Mono<ExitStatus> awaitExit(String execId) {
        Optional<TaskProcess> process = processes.find(execId);
        Mono<ExitStatus> exit = session.call("wait for", "Wait", WaitRequest.newBuilder().setId(id())
                        .setExecId(execId).build(), WaitResponse.parser())
                .map(exited -> new ExitStatus(process.map(TaskProcess::pid).orElse(0), exited.getExitStatus(),
                        TaskEvents.instant(exited.getExitedAt())));
        return process.map(p -> p.withOutput(exit)).orElse(exit);
    }

    @Override
    public Mono<Void> kill(int signal, boolean all) {
        return session.call("kill", "Kill", KillRequest.newBuilder().setId(id()).setSignal(signal).setAll(all)
                .build(), Empty.parser()).then();
    }

    @Override
    public Mono<Void> kill(String execId, int signal) {
        return session.call("kill", "Kill", KillRequest.newBuilder().setId(id()).setExecId(execId).setSignal(signal)
                .build(), Empty.parser()).then();
    }

    @Override
    public Mono<ExitStatus> delete(String execId) {
        String action = execId.isEmpty() ? "delete" : "delete exec " + execId + " in";
        return Mono.defer(() -> {
            Optional<TaskProcess> process = processes.find(execId);
            TaskProcess.Transition deleting = process.map(p -> p.begin(action, ProcessState.DELETING, SETTLED))
                    .orElse(null);
            Mono<ExitStatus> work = deleteCall(action, execId)
                    .flatMap(deleted -> {
                        if (execId.isEmpty()) {
                            taskGone();
                        }
                        // A process we did not prepare (we reattached) may have left FIFOs: nobody can use them now.
                        Mono<Void> drained = process.isPresent() ? process.get().drained() : blocking(() -> {
                            ProcessStdio.removeFifos(ioDir(), execId.isEmpty() ? id() : execId);
                            return true;
                        }).then();
                        return drained.thenReturn(new ExitStatus(deleted.getPid(), deleted.getExitStatus(),
                                TaskEvents.instant(deleted.getExitedAt())));
                    })
                    .doOnNext(exit -> process.ifPresent(p -> {
                        processes.remove(p);
                        deleting.commit(ProcessState.DELETED);
                    }))
                    .doFinally(signal -> {
                        if (deleting != null) {
                            deleting.close();
                        }
                    });
            return Operations.runToEnd(work);
        });
    }

    /** The init task is gone: anyone may create again, and its execs' streams go with it. */
    private void taskGone() {
        session.untrackInit();
        claims.taskGone(bundle.path());
        resources.io().schedule(() -> processes.removeExecs().forEach(TaskProcess::release));
    }

    @Override
    public Mono<TaskState> state(String execId) {
        return session.call("get state of", "State", StateRequest.newBuilder().setId(id()).setExecId(execId).build(),
                StateResponse.parser()).map(TaskMessages::taskState);
    }

    @Override
    public Flux<ProcessInfo> pids() {
        return session.call("list processes of", "Pids", PidsRequest.newBuilder().setId(id()).build(),
                        PidsResponse.parser())
                .flatMapIterable(PidsResponse::getProcessesList)
                .map(process -> new ProcessInfo(process.getPid(), TaskMessages.execIdOf(process.getInfo())));
    }

    @Override
    public Mono<ProcessIo> exec(String execId, byte[] processSpec, Stdio stdio) {
        String action = "exec " + execId + " in";
        return Mono.defer(() -> {
            // Before any path is built from the id, or anything sent: the shim itself checks neither.
            Identifiers.requireValid("exec id", execId);
            Specs.requireJsonObject(action + " " + task(), processSpec);
            return processes.reserve("exec", execId);
        }).flatMap(creating -> {
            TaskProcess exec = creating.process();
            Mono<ProcessIo> work = blocking(() -> prepare(exec, stdio, "exec"))
                    .flatMap(prepared -> session.call(action, "Exec", TaskMessages.exec(id(), execId, processSpec,
                            prepared), Empty.parser()))
                    .map(done -> {
                        creating.commit(ProcessState.CREATED);
                        return exec.io(0);
                    })
                    .onErrorResume(error -> undo(creating, Mono.empty()).then(Mono.error(error)));
            return Operations.runToEnd(work, io -> undo(creating, deleteCall("delete", execId)));
        }).onErrorMap(error -> !(error instanceof ShimmerException), error -> session.mapError(action, error));
    }

    @Override
    public Mono<Void> closeIo(String execId) {
        return Mono.defer(() -> {
            processes.find(execId).ifPresent(TaskProcess::closeStdin);
            return session.call("close stdin of", "CloseIO", CloseIORequest.newBuilder().setId(id())
                    .setExecId(execId).setStdin(true).build(), Empty.parser()).then();
        });
    }

    /** The caller's stdin publisher ended: tell the shim, as containerd clients do with their stdin closer. */
    private void endOfStdin(String execId) {
        closeIo(execId).subscribe(done -> {}, error ->
                log.debug("closing stdin of {} {} after its end: {}", task(), execId, error.toString()));
    }

    @Override
    public Mono<Void> pause() {
        return session.call("pause", "Pause", PauseRequest.newBuilder().setId(id()).build(), Empty.parser()).then();
    }

    @Override
    public Mono<Void> resume() {
        return session.call("resume", "Resume", ResumeRequest.newBuilder().setId(id()).build(), Empty.parser())
                .then();
    }

    @Override
    public Mono<Void> update(byte[] linuxResources) {
        return session.call("update", "Update", TaskMessages.update(id(), linuxResources), Empty.parser()).then();
    }

    @Override
    public Mono<Stats> stats() {
        return session.call("get stats of", "Stats", StatsRequest.newBuilder().setId(id()).build(),
                        StatsResponse.parser())
                .map(stats -> new Stats(stats.getStats().getTypeUrl(), stats.getStats().getValue().toByteArray()));
    }

    @Override
    public Mono<Void> checkpoint(Path imagePath, boolean exit) {
        return session.call("checkpoint", "Checkpoint", TaskMessages.checkpoint(id(), imagePath, exit),
                Empty.parser()).then();
    }

    @Override
    public Mono<Void> shutdown() {
        return session.shutdown();
    }

    /** Detaches: the shim and its task keep running, and {@code connect()} finds them again. */
    @Override
    public Mono<Void> close() {
        return session.close();
    }

    @Override
    public Flux<Envelope> events() {
        return TaskEvents.of(exchange, namespace(), id());
    }

    /** Lets go of every stream this client holds (a detach, a shutdown, the shim's death). Blocking. */
    void releaseStreams() {
        processes.all().forEach(TaskProcess::release);
    }

    private Path ioDir() {
        return bundle.workDir().resolve("io");
    }

    private String task() {
        return "task " + namespace() + "/" + id();
    }

    private <T> Mono<T> blocking(Callable<T> work) {
        return Mono.fromCallable(work).subscribeOn(resources.io());
    }
}
