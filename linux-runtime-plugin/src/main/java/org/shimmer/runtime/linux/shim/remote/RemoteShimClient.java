package org.shimmer.runtime.linux.shim.remote;

import com.google.protobuf.Any;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.linux.bundle.RootfsDirectory;
import org.shimmer.runtime.linux.bundle.Specs;
import org.shimmer.runtime.linux.cleanup.Launches;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.shim.ProcessState;
import org.shimmer.runtime.linux.shim.ProcessTable;
import org.shimmer.runtime.linux.shim.ProcessStdio;
import org.shimmer.runtime.linux.shim.ResourceUpdates;
import org.shimmer.runtime.linux.shim.TaskClient;
import org.shimmer.runtime.linux.shim.TaskErrors;
import org.shimmer.runtime.linux.shim.TaskEvents;
import org.shimmer.runtime.linux.shim.TaskProcess;
import org.shimmer.runtime.linux.shim.proto.StateResponse;
import org.shimmer.runtime.linux.shim.proto.Status;
import org.shimmer.runtime.linux.stats.StatsDecoder;
import org.shimmer.runtime.linux.ttrpc.TtrpcStatusException;
import org.shimmer.runtime.shim.ContainerStats;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ProcessInfo;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimExit;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import org.shimmer.runtime.shim.TerminalSize;
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
final class RemoteShimClient extends TaskClient {

    private static final Logger log = LoggerFactory.getLogger(RemoteShimClient.class);
    /** Pause, resume and a paused task's kill of all, one at a time: each reads or changes the freezer. */
    private final InOrder freezerChanges = new InOrder();
    /** containerd's shim's refusal to delete a live exec, paused container or not. */
    private static final String RUNNING_DELETE_REFUSED = "cannot delete a running process";
    /** The shim decides whether a live process may go; only an operation of ours in flight is refused here. */
    private static final Set<ProcessState> SETTLED = Set.of(ProcessState.CREATED, ProcessState.RUNNING,
            ProcessState.PAUSED, ProcessState.STOPPED);

    private final RuncOptions runc;
    private final Any runcOptions;
    private final TaskClaims claims;
    private final ShimSession session;
    private final TaskService tasks;

    RemoteShimClient(Bundle bundle, ShimCommand command, Path socket, RuntimeResources resources,
            EventExchange exchange, RuncOptions runc, Any runcOptions, Consumer<ShimExit> exitHandler,
            TaskClaims claims, InitExits initExits) {
        super(bundle, resources, exchange, false);
        this.runc = runc;
        this.runcOptions = runcOptions;
        this.claims = claims;
        this.session = new ShimSession(bundle, command, socket, resources, exchange, exitHandler, claims,
                initExits, this);
        this.tasks = new TaskService(session, bundle.id());
    }

    /** The attachment to the shim; tests read its pid and cut its connection. */
    ShimSession session() {
        return session;
    }

    @Override
    public Mono<ProcessIo> create(CreateOptions options) {
        AtomicBoolean shimMayHaveIt = new AtomicBoolean();
        return make("create", "", init -> {
            // After the reservation: an abandoned create of this client has finished its undo by now.
            if (!claims.claim(bundle.path(), this)) {
                return Mono.error(new AlreadyExistsException("create " + task()
                        + ": already created, or being created, by another client of this runtime"));
            }
            return blocking(() -> {
                        // Before anything is sent: a spec and stdio that disagree make a container that cannot run.
                        Specs.requireTerminal(task(), Files.readAllBytes(bundle.path().resolve("config.json")), true,
                                options.stdio() instanceof Stdio.Terminal);
                        return true;
                    })
                    .then(tasks.requireAbsent(task()))
                    .then(blocking(() -> {
                        // The shim's failed create unmounts everything at rootfs, a running container's mount as
                        // well: a container runc has (a local shim's, another shim's) is refused before then.
                        if (Launches.createWouldMeetContainer(bundle, runc)) {
                            throw new AlreadyExistsException("create " + task() + ": runc already has a container"
                                    + " for this bundle; nothing was sent to the shim");
                        }
                        // The shim mounts by path, following a link: a rootfs that is one would take its mounts.
                        if (!options.rootfs().isEmpty()) {
                            RootfsDirectory.requireUnlessAbsent(bundle.rootfs());
                        }
                        return prepare(init, options.stdio(), "create");
                    }))
                    .flatMap(stdio -> Mono.defer(() -> {
                                init.beginLaunch();
                                return tasks.create(bundle.path(), options, stdio, runcOptions);
                            })
                            .doOnError(error -> shimMayHaveIt.set(ShimErrors.createMayHaveLeftContainer(error)))
                            .doFinally(signal -> init.launched())
                            .flatMap(created -> initialSize(options.stdio()).thenReturn(created)))
                    .map(created -> {
                        init.pid(created.getPid());
                        session.trackInit(created.getPid(), false);
                        return created.getPid();
                    });
            // Each undo lets go of the claim only once the shim forgot the task: a create waiting meanwhile must
            // find the claim free then, and only then.
        }, init -> (shimMayHaveIt.get() ? blocking(session::runShimDelete) : Mono.empty())
                .onErrorResume(failed -> Mono.empty())
                .then(Mono.fromRunnable(() -> claims.release(bundle.path(), this))),
                init -> tasks.deleteInit("delete", true).onErrorResume(failed -> Mono.empty())
                        .then(Mono.fromRunnable(this::taskGone)))
                .onErrorMap(error -> ShimErrors.createFailure(task(), error, session, written()));
    }

    /**
     * Where the shim and its runc write at a create: the bundle, the work directory and runc's state root of the
     * namespace (the {@code Root} option the shim was given; a full one made runc's create say only "unable to store
     * init state: %!w(<nil>)"). A full one among them explains a failure the shim's words do not.
     */
    private Path[] written() {
        List<Path> written = new ArrayList<>(List.of(bundle.path(), bundle.workDir()));
        if (runc.runtimeRoot() != null) {
            written.add(Path.of(runc.runtimeRoot()).resolve(bundle.namespace()));
        }
        return written.toArray(Path[]::new);
    }

    /**
     * The terminal's size, set while init is created and not yet running (the shim holds the pty master since
     * Create). If the shim cannot, the task it made is deleted before the create fails.
     */
    private Mono<Void> initialSize(Stdio stdio) {
        if (!(stdio instanceof Stdio.Terminal terminal)) {
            return Mono.empty();
        }
        return tasks.resizePty("size the terminal of", "", terminal.size())
                .onErrorResume(failed -> tasks.deleteInit("delete", true).onErrorResume(undone -> Mono.empty())
                        .then(Mono.error(failed)));
    }

    @Override
    public Mono<Integer> start(String execId) {
        return Mono.defer(() -> {
            TaskProcess process = processes.findOrUntracked(execId, ProcessState.CREATED);
            return move(process, "start", ProcessState.STARTING, Set.of(ProcessState.CREATED), ProcessState.RUNNING,
                    starting -> Mono.usingWhen(
                                    execId.isEmpty() || process.stdio() != null ? Mono.just((AutoCloseable) () -> { })
                                            : blocking(() -> ProcessStdio.holdOutputsForLaunch(ioDir(),
                                                    ProcessStdio.fifoName(id(), execId))),
                                    held -> {
                                        if (!execId.isEmpty()) {
                                            process.beginLaunch();
                                        }
                                        return tasks.start(startAction(execId), execId);
                                    },
                                    // In place: closing a FIFO never waits, and after a stop no io thread runs.
                                    held -> Mono.fromCallable(() -> {
                                        held.close();
                                        return true;
                                    }))
                            .doFinally(signal -> {
                                if (!execId.isEmpty()) {
                                    process.launched();
                                }
                            })
                            .doOnNext(pid -> {
                                process.pid(pid);
                                // The shim opens an exec's stdio only at Start: only now may its stdin be fed.
                                if (!execId.isEmpty()) {
                                    process.startStdin(() -> stdinEnded(execId));
                                }
                            }));
        });
    }

    private static String startAction(String execId) {
        return execId.isEmpty() ? "start" : "start exec " + execId + " in";
    }

    @Override
    public Mono<ExitStatus> awaitExit(String execId) {
        // Looked up when subscribed: a caller may assemble the wait before the exec exists or started.
        return Mono.defer(() -> {
            Optional<TaskProcess> process = processes.find(execId);
            // The shim's Wait answers no pid. A process this client did not start (a client that reconnected after
            // a reload or a host's crash) has its pid asked of the shim alongside: its exit said pid 0.
            Mono<Integer> pid = process.map(known -> Mono.just(known.pid()))
                    .orElseGet(() -> tasks.state(execId).map(TaskState::pid).onErrorReturn(0));
            Mono<ExitStatus> exit = Mono.zip(tasks.waitFor(execId), pid,
                    (status, known) -> new ExitStatus(known, status.status(), status.exitedAt()));
            // The shim never answers the Wait of an exec deleted before it started: its end here answers instead.
            return process.map(p -> p.withOutput(Mono.firstWithSignal(exit, p.awaitExit()))).orElse(exit);
        });
    }

    @Override
    public Mono<Void> kill(int signal, boolean all) {
        return Mono.defer(() -> {
            requireSignal("kill", signal);
            if (!all || signal == SIGKILL) {
                return tasks.kill("kill", "", signal, all);
            }
            // The shim's Kill with all is runc kill --all, which thaws a paused task to signal it: it ran on while
            // the shim called it paused, and its Resume failed. Its processes are signalled here instead, frozen.
            // In line with this client's pauses and resumes: one between the State and a Kill would be thawed.
            return freezerChanges.next(tasks.state("kill", "").flatMap(state ->
                    state.status() != TaskState.Status.PAUSED ? tasks.kill("kill", "", signal, true)
                    : tasks.pids().map(ProcessInfo::pid).collectList().flatMap(pids -> blocking(() -> {
                        for (int pid : pids) {
                            signalFrozen(pid, signal);
                        }
                        return true;
                    })).then().onErrorMap(error -> TaskErrors.map("kill", task(), error))));
        });
    }

    @Override
    public Mono<Void> kill(String execId, int signal) {
        return Mono.defer(() -> {
            String action = killAction(execId);
            requireSignal(action, signal);
            return tasks.kill(action, execId, signal, false);
        });
    }

    @Override
    public Mono<ExitStatus> delete(String execId) {
        String action = "".equals(execId) ? "delete" : "delete exec " + execId + " in";
        return Mono.defer(() -> {
            TaskProcess process = processes.findOrUntracked(execId, ProcessState.STOPPED);
            return move(process, "delete", ProcessState.DELETING, SETTLED, ProcessState.DELETED, deleting ->
                    (execId.isEmpty() ? tasks.deleteInit(action, mayStillBeCreated(process, deleting))
                            : tasks.delete(action, execId))
                    .onErrorMap(error -> pausedDeleteInOurWords(action, process, error))
                    .onErrorResume(FailedPreconditionException.class, refused -> pausedExecDeleteInOurWords(process,
                            refused).flatMap(Mono::error))
                    .onErrorResume(NotFoundException.class, gone -> forgetGone(process).then(Mono.error(gone)))
                    // The FIFOs of execs a runtime before a reload made went with their container; before the
                    // bundle is free for another create, whose FIFOs these must not be.
                    .flatMap(deleted -> execId.isEmpty() ? blocking(() -> {
                        ProcessStdio.removeAllFifos(ioDir());
                        return deleted;
                    }) : Mono.just(deleted))
                    .flatMap(deleted -> {
                        if (execId.isEmpty()) {
                            session.untrackInit();
                        }
                        // A process we did not prepare (we reattached) may have left FIFOs: nobody can use them.
                        Mono<?> drained = process.stdio() != null ? process.drained() : blocking(() -> {
                            ProcessStdio.removeFifos(ioDir(), ProcessStdio.fifoName(id(), execId));
                            return true;
                        });
                        // A process that never ran has no exit time: now, as the local shim says.
                        ExitStatus exit = new ExitStatus(deleted.getPid(), deleted.getExitStatus(),
                                TaskEvents.exitedAt(deleted.getExitedAt()).orElseGet(Instant::now));
                        process.exited(exit);
                        // The bundle is free for another create only once init's streams are released: their
                        // release removes its FIFOs by name, and took those of a create let in meanwhile (review).
                        return (execId.isEmpty() ? drained.doOnTerminate(() -> claims.taskGone(bundle.path()))
                                : drained).thenReturn(exit);
                    }));
        });
    }

    /**
     * The shim's refusal to delete a paused process ("cannot delete a paused process", an UNKNOWN status read as
     * a failed precondition by its words) in the local shim's words, naming the task and its state.
     */
    private static Throwable pausedDeleteInOurWords(String action, TaskProcess process, Throwable error) {
        return error instanceof FailedPreconditionException refused
                && refused.getCause() instanceof TtrpcStatusException status
                && status.statusMessage().contains("cannot delete a paused process")
                ? TaskProcess.pausedDeleteRefused(action, process.name(), status) : error;
    }

    /**
     * The shim's refusal to delete a running exec of a paused container ("cannot delete a running process", its
     * exec's state following the container's) in the words of a paused task's, as the local shim says it: the exec's
     * state is PAUSED. The shim is asked that state; any other refusal is as it was.
     */
    private Mono<Throwable> pausedExecDeleteInOurWords(TaskProcess process, FailedPreconditionException refused) {
        if (process.execId().isEmpty() || !String.valueOf(refused.getMessage()).contains(RUNNING_DELETE_REFUSED)) {
            return Mono.just(refused);
        }
        return tasks.state("delete", process.execId())
                .filter(state -> state.status() == TaskState.Status.PAUSED)
                .<Throwable>map(paused -> TaskProcess.pausedDeleteRefused("delete", process.name(),
                        refused.getCause() != null ? refused.getCause() : refused))
                .onErrorResume(unknown -> Mono.empty())
                .defaultIfEmpty(refused);
    }

    /**
     * Whether the shim may hold init as created (never started). Not when this client made it and saw its Start
     * succeed: a process never goes back to created. Otherwise (made here and not started by us, or found by a
     * reconnect) another client may have started it, and only the shim can tell.
     */
    private boolean mayStillBeCreated(TaskProcess process, TaskProcess.Transition deleting) {
        return processes.find(process.execId()).orElse(null) != process || deleting.was() == ProcessState.CREATED;
    }

    /**
     * The shim no longer has a process this client made (another client deleted it): this client forgets it too,
     * or its create would be refused and its delete fail for good. The caller learns it once the process's streams
     * are released: released later, on another thread, they removed the FIFOs of the same name that the caller's
     * next create had just made (the shim then failed to open its stdout; RemoteShimTest under load).
     */
    private Mono<Void> forgetGone(TaskProcess process) {
        if (processes.find(process.execId()).orElse(null) != process) {
            return Mono.empty();
        }
        forget(process);
        // Released before the claim too: another client of this runtime may then make FIFOs of the same names.
        // Part of a delete, which runs to its end whatever its caller does, so a cancel does not skip it.
        return blocking(() -> {
            process.release();
            return true;
        }).then(Mono.fromRunnable(() -> {
            if (process.execId().isEmpty()) {
                // Only our own claim: the task being absent, another client may be creating it right now.
                session.untrackInit();
                claims.release(bundle.path(), this);
            }
        }));
    }

    /** The init task is gone: anyone may create again. */
    private void taskGone() {
        session.untrackInit();
        claims.taskGone(bundle.path());
    }

    @Override
    public Mono<TaskState> state(String execId) {
        // After an operation of ours in flight on the process, as the shim itself would answer after its own.
        return Mono.defer(() -> processes.find(execId).map(TaskProcess::settledNow).orElse(Mono.empty()))
                .then(Mono.defer(() -> tasks.state(execId)));
    }

    @Override
    public Flux<ProcessInfo> pids() {
        return tasks.pids();
    }

    @Override
    public Mono<ProcessIo> exec(String execId, byte[] processSpec, Stdio stdio) {
        String action = "exec " + execId + " in";
        return Mono.defer(() -> {
            // Before any path is built from the id, or anything sent: the shim itself checks neither.
            Identifiers.requireValid("exec id", execId);
            String owner = action + " " + task();
            Specs.requireJsonObject(owner, processSpec);
            Specs.requireTerminal(owner, processSpec, false, stdio instanceof Stdio.Terminal);
            // The shim has an exec's pty master only once the exec runs: runc sizes it before, from the spec.
            byte[] spec = stdio instanceof Stdio.Terminal terminal ? Specs.withConsoleSize(owner, processSpec,
                    terminal.size().width(), terminal.size().height()) : processSpec;
            return make("exec", execId, exec -> blocking(() -> {
                                session.requireOpen(action);
                                return prepare(exec, stdio, "exec");
                            })
                            .flatMap(prepared -> tasks.exec(action, execId, spec, prepared))
                            .thenReturn(0),
                    exec -> Mono.empty(), exec -> tasks.delete("delete", execId));
        }).onErrorMap(error -> !(error instanceof ShimmerException), error -> session.mapError(action, error));
    }

    /**
     * ResizePty, after the shim's State said the process has a terminal and has not stopped: the shim itself
     * answers both of those with success and no effect. A resize that fails because the process stopped meanwhile
     * is told as such.
     */
    @Override
    public Mono<Void> resize(String execId, TerminalSize size) {
        String action = "".equals(execId) ? "resize the terminal of" : "resize the terminal of exec " + execId
                + " in";
        return Mono.defer(() -> {
            ProcessTable.requireExecId(execId);
            Objects.requireNonNull(size, "size");
            return tasks.rawState(action, execId)
                    .flatMap(state -> resizable(action, execId, state).then(tasks.resizePty(action, execId, size)
                            .onErrorResume(failed -> tasks.rawState(action, execId)
                                    .flatMap(now -> resizable(action, execId, now))
                                    .then(Mono.error(failed)))));
        });
    }

    private Mono<Void> resizable(String action, String execId, StateResponse state) {
        if (!state.getTerminal()) {
            return Mono.error(new FailedPreconditionException(action + " " + task() + ": "
                    + (execId.isEmpty() ? "init" : "exec " + execId) + " has no terminal (not made with "
                    + "Stdio.terminal)"));
        }
        if (state.getStatus() == Status.STOPPED) {
            return Mono.error(new FailedPreconditionException(action + " " + task() + ": "
                    + (execId.isEmpty() ? "init" : "exec " + execId) + " has exited"));
        }
        // The shim makes an exec's console only when it starts it, and answers a resize before that with success
        // while dropping it: refused as the local shim refuses it (the size given at exec still applies).
        if (!execId.isEmpty() && state.getStatus() == Status.CREATED) {
            return Mono.error(new FailedPreconditionException(action + " " + task() + ": exec " + execId
                    + " has no terminal yet: it was not started"));
        }
        return Mono.empty();
    }

    @Override
    public Mono<Void> closeIo(String execId) {
        return Mono.defer(() -> {
            Optional<TaskProcess> process = processes.find(execId);
            process.ifPresent(TaskProcess::closeStdin);
            // The shim ends a console's output copy once its stdin reaches end of file: a terminal keeps its
            // stdin FIFO open (the shim's own writer), so nothing more is typed and the process keeps its output.
            // A process this client did not make (it reattached) is asked about.
            Mono<Boolean> terminal = process.isPresent() ? Mono.just(hasTerminal(process.get()))
                    : tasks.rawState("close stdin of", execId).map(StateResponse::getTerminal);
            return terminal.flatMap(kept -> kept ? Mono.<Void>empty() : tasks.closeStdin(execId));
        });
    }

    private static boolean hasTerminal(TaskProcess process) {
        ProcessStdio stdio = process.stdio();
        return stdio != null && stdio.isTerminal();
    }

    /** The caller's stdin publisher ended: tell the shim, as containerd clients do with their stdin closer. */
    @Override
    protected void stdinEnded(String execId) {
        closeIo(execId).subscribe(done -> {}, error ->
                log.debug("closing stdin of {} {} after its end: {}", task(), execId, error.toString()));
    }

    @Override
    public Mono<Void> pause() {
        return freezerChanges.next(tasks.pause());
    }

    @Override
    public Mono<Void> resume() {
        return freezerChanges.next(tasks.resume());
    }

    @Override
    public Mono<Void> update(byte[] linuxResources) {
        return Mono.defer(() -> {
            // Before anything is sent: the shim called a non-object or an impossible limit an internal failure.
            ResourceUpdates.check("update " + task(), linuxResources);
            return keepingLimits(linuxResources, tasks::update);
        }).onErrorMap(error -> ResourceUpdates.refused(task(), error));
    }

    @Override
    public Mono<ContainerStats> stats() {
        // The shim reads the cgroup as long as the task exists, a stopped one too (pids 0); runc, which the local
        // shim asks, refuses a stopped container ("not running"). Both refuse it here: one behaviour, whichever
        // shim, and no stats of a container that has ended.
        return tasks.state("get stats of", "")
                .flatMap(init -> init.status() == TaskState.Status.STOPPED
                        ? Mono.error(new FailedPreconditionException("get stats of " + task()
                                + ": the container is not running (stopped)"))
                        : tasks.stats())
                .map(StatsDecoder::decode);
    }

    @Override
    public Mono<Void> checkpoint(Path imagePath, boolean exit) {
        return tasks.checkpoint(imagePath, exit);
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

    /** Lets go of every stream this client holds (a detach, a shutdown, the shim's death). Blocking. */
    void releaseStreams() {
        processes.all().forEach(TaskProcess::release);
    }
}
