package org.shimmer.runtime.linux.shim.local;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Optional;
import java.util.Set;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.bundle.Specs;
import org.shimmer.runtime.linux.poll.ExitMonitor;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.runc.Runc;
import org.shimmer.runtime.linux.shim.Operations;
import org.shimmer.runtime.linux.shim.ProcessState;
import org.shimmer.runtime.linux.shim.ProcessStdio;
import org.shimmer.runtime.linux.shim.ResourceUpdates;
import org.shimmer.runtime.linux.shim.TaskClient;
import org.shimmer.runtime.linux.shim.TaskErrors;
import org.shimmer.runtime.linux.shim.TaskProcess;
import org.shimmer.runtime.linux.stats.RuncStats;
import org.shimmer.runtime.linux.stats.StatsDecoder;
import org.shimmer.runtime.shim.ContainerStats;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ProcessInfo;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.Stats;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import org.shimmer.runtime.shim.TerminalSize;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * The shim contract implemented in the JVM: drives {@code runc} itself ({@link LocalLauncher}), learns exits from
 * the {@link ExitMonitor}, and publishes containerd's task events, with the same topics and payloads, into the
 * runtime's exchange. Here the process states are ours: every operation moves a {@link TaskProcess}.
 *
 * <p>Invariants: a process's exit event is published only after its start event (containerd #8617); an exec
 * cannot start once init has exited (containerd #10651); a create that fails or that nobody took removes what it
 * made and nothing else.
 */
final class LocalShimClient extends TaskClient {

    private static final Logger log = LoggerFactory.getLogger(LocalShimClient.class);
    private static final Set<ProcessState> DELETABLE = Set.of(ProcessState.CREATED, ProcessState.STOPPED);

    private final Runc runc;
    private final ExitMonitor monitor;
    private final Runnable forget;
    private final LocalLauncher launcher;
    /** Whether its init was found on disk after a reload: execs it never knew may have left their files. */
    private volatile boolean recoveredInit;

    LocalShimClient(Bundle bundle, Runc runc, RuntimeResources resources, ExitMonitor monitor,
            EventExchange exchange, Runnable forget) {
        super(bundle, resources, exchange, true);
        this.runc = runc;
        this.monitor = monitor;
        this.forget = forget;
        this.launcher = new LocalLauncher(bundle, runc, monitor, resources);
    }

    @Override
    public Mono<ProcessIo> create(CreateOptions options) {
        LocalLauncher.Made making = new LocalLauncher.Made();
        return make("create", "", init -> blocking(() -> {
                            requireTerminal(options.stdio());
                            prepare(init, options.stdio(), "create");
                            launcher.mountRootfs(options);
                            return true;
                        })
                        .then(launcher.create(init, making))
                        .flatMap(pid -> publish(new TaskEvent.TaskCreate(id(), bundle.path().toString(),
                                options.rootfs().stream().map(m -> new TaskEvent.TaskMount(m.type(), m.source(),
                                        m.options())).toList(), pid)).thenReturn(pid))
                        .doOnNext(pid -> publishExitUnlessStarted(init)),
                init -> launcher.undoCreate(init, making),
                // Its create event went out; so does its end, as the remote shim's Delete publishes it.
                init -> launcher.undoCreate(init, making).then(Mono.defer(() -> publishQuietly(new TaskEvent.TaskDelete(
                        id(), init.pid(), init.exited().map(ExitStatus::status).orElse(137), Instant.now())))))
                .onErrorMap(error -> map("create", error))
                .onErrorMap(AlreadyExistsException.class, this::heldByRunc);
    }

    /**
     * runc's refusal of a create over a container it has of the id names no way out: a runtime that stopped while
     * its {@code runc create} ran (the stop ends it) or crashed then left what runc made, which no task of this
     * bundle names (its state, kill and delete say the task is not created) and only a forced delete removes.
     */
    private AlreadyExistsException heldByRunc(AlreadyExistsException taken) {
        if (!String.valueOf(taken.getMessage()).contains("container with given ID already exists")) {
            return taken;
        }
        return new AlreadyExistsException(taken.getMessage() + "; runc has a container " + id() + " in "
                + runc.root() + ": if a runtime that stopped or crashed during a create of this task left it,"
                + " RuntimePlugin.forceDelete(\"" + bundle.namespace() + "\", \"" + id()
                + "\") removes it and kills whatever of it still runs", taken);
    }

    @Override
    public Mono<ProcessIo> exec(String execId, byte[] processSpec, Stdio stdio) {
        String action = "exec " + execId + " in";
        return Mono.defer(() -> {
            // Before any path is built from the id: "../x" would name a file outside the work directory.
            Identifiers.requireValid("exec id", execId);
            Specs.requireJsonObject(action + " " + task(), processSpec);
            Specs.requireTerminal(action + " " + task(), processSpec, false, stdio instanceof Stdio.Terminal);
            // runc sizes the terminal before the process runs: by the time runc exec returns, it may have asked.
            byte[] spec = stdio instanceof Stdio.Terminal terminal ? Specs.withConsoleSize(action + " " + task(),
                    processSpec, terminal.size().width(), terminal.size().height()) : processSpec;
            processes.get(action, "");
            return make("exec", execId, exec -> blocking(() -> {
                        prepare(exec, stdio, "exec");
                        launcher.writeExecSpec(execId, spec);
                        return 0;
                    }).flatMap(pid -> publish(new TaskEvent.TaskExecAdded(id(), execId)).thenReturn(pid)),
                    exec -> launcher.removeExec(execId), exec -> launcher.removeExec(execId));
        }).onErrorMap(error -> map(action, error));
    }

    @Override
    public Mono<Integer> start(String execId) {
        String action = "".equals(execId) ? "start" : "start exec " + execId + " in";
        return Mono.defer(() -> {
            TaskProcess process = processes.get("start", execId);
            // containerd #10651: an exec must not start once init has exited (its namespaces are going away).
            if (!execId.isEmpty() && processes.get(action, "").state() == ProcessState.STOPPED) {
                throw new FailedPreconditionException(action + " " + task() + ": the container is not running");
            }
            return move(process, "start", ProcessState.STARTING, Set.of(ProcessState.CREATED), ProcessState.RUNNING,
                    starting -> launcher.start(process)
                            .flatMap(pid -> publishQuietly(execId.isEmpty() ? new TaskEvent.TaskStart(id(), pid)
                                    : new TaskEvent.TaskExecStarted(id(), execId, pid)).thenReturn(pid))
                            .doOnNext(pid -> {
                                // Only now does an exec hold its stdin FIFO's read end: start feeding it.
                                if (!execId.isEmpty()) {
                                    process.startStdin(() -> stdinEnded(execId));
                                }
                                publishExitAfterStart(process);
                            }));
        }).onErrorMap(error -> map(action, error));
    }

    @Override
    protected void stdinEnded(String execId) {
        // Our end of the FIFO closed is the end of the process's input: runc holds no writer of its own.
    }

    @Override
    public Mono<ExitStatus> awaitExit(String execId) {
        return Mono.defer(() -> {
            TaskProcess process = processes.get("wait for", execId);
            return process.withOutput(process.awaitExit());
        }).onErrorMap(error -> map("wait for", error));
    }

    @Override
    public Mono<Void> kill(int signal, boolean all) {
        return onInit("kill", Mono.defer(() -> {
            requireSignal("kill", signal);
            Mono<Void> kill = runc.kill(id(), signal, all).onErrorMap(TaskErrors::ofKill);
            return all && signal != SIGKILL ? killAllKeepingPaused(processes.get("kill", ""), signal, kill) : kill;
        }));
    }

    /**
     * {@code runc kill --all}, except of a paused task: runc freezes the cgroup to signal every process, then
     * thaws it, so a paused task ran on while it was called paused, and its resume failed ("container not
     * paused"). Its processes are signalled one by one instead, left frozen: the signal is theirs on resume, as a
     * kill of init alone is. Frozen, none can exit, so no pid can be reused meanwhile; pause and resume wait for
     * it. SIGKILL keeps runc's thaw: on cgroup v1 a frozen process would never die of it.
     */
    private Mono<Void> killAllKeepingPaused(TaskProcess init, int signal, Mono<Void> kill) {
        return Operations.runToEnd(init.begin("kill", ProcessState.PAUSING,
                        Set.of(ProcessState.RUNNING, ProcessState.PAUSED))
                .map(Optional::of)
                // Created or stopped: runc's to answer, as before.
                .onErrorResume(notStarted -> Mono.just(Optional.empty()))
                .flatMap(held -> {
                    if (held.isEmpty()) {
                        return kill;
                    }
                    TaskProcess.Transition killing = held.get();
                    if (killing.was() != ProcessState.PAUSED) {
                        killing.moveThrough(ProcessState.RUNNING);
                        return kill.doFinally(signalType -> killing.close());
                    }
                    return runc.pids(id())
                            .flatMap(pids -> blocking(() -> {
                                for (int pid : pids) {
                                    signalFrozen(pid, signal);
                                }
                                return true;
                            }))
                            .then()
                            .doFinally(signalType -> killing.close());
                }));
    }

    @Override
    public Mono<Void> kill(String execId, int signal) {
        return Mono.defer(() -> {
            String action = killAction(execId);
            return Mono.fromCallable(() -> {
                        TaskProcess process = processes.get("kill", execId);
                        requireSignal(action, signal);
                        return process;
                    })
                    .flatMap(process -> blocking(() -> launcher.signal(process, signal)))
                    .onErrorMap(error -> map(action, error));
        }).then();
    }

    @Override
    public Mono<ExitStatus> delete(String execId) {
        String action = "".equals(execId) ? "delete" : "delete exec " + execId + " in";
        return Mono.defer(() -> {
            TaskProcess process = processes.get("delete", execId);
            return move(process, "delete", ProcessState.DELETING, DELETABLE, ProcessState.DELETED, deleting ->
                    execId.isEmpty() ? deleteInit(process, deleting.was() == ProcessState.CREATED)
                            : process.drained().then(launcher.removeExec(execId)).thenReturn(process.exited()
                                    .orElseGet(() -> new ExitStatus(0, 0, Instant.now()))))
                    // A running exec of a paused container is paused (its state says so): refused as a paused
                    // task's delete is, not as "cannot delete a running process", in the remote shim's words too.
                    .onErrorMap(FailedPreconditionException.class, refused -> !execId.isEmpty()
                            && frozenWithInit(process, process.state()) == ProcessState.PAUSED
                            ? TaskProcess.pausedDeleteRefused("delete", process.name(), null) : refused);
        }).onErrorMap(error -> map(action, error));
    }

    private Mono<ExitStatus> deleteInit(TaskProcess init, boolean neverStarted) {
        // A created, never started init is killed by the forced delete; its exit then arrives as usual.
        return launcher.deleteContainer(init, neverStarted)
                .then(init.awaitExit())
                .flatMap(exit -> init.drained().thenReturn(exit))
                .flatMap(exit -> blocking(() -> {
                    launcher.removeContainerFiles(dropExecs(), recoveredInit);
                    return exit;
                }))
                .flatMap(exit -> publish(new TaskEvent.TaskDelete(id(), exit.pid(), exit.status(),
                        exit.exitedAt())).thenReturn(exit));
    }

    @Override
    public Mono<TaskState> state(String execId) {
        return Mono.defer(() -> {
            TaskProcess process = processes.get("get state of", execId);
            return process.settledState().map(state -> {
                // It may have been undone (a create nobody took) or deleted while we waited.
                if (state == ProcessState.DELETED) {
                    throw new NotFoundException("get state of " + process.name() + ": not found");
                }
                return process.taskState(id(), frozenWithInit(process, state));
            });
        }).onErrorMap(error -> map("get state of", error));
    }

    /**
     * A running exec of a paused container is paused too, as the runc shim says of it (its exec's state follows
     * the container's): it said running here.
     */
    private ProcessState frozenWithInit(TaskProcess process, ProcessState state) {
        boolean initPaused = processes.find("").map(init -> init.state() == ProcessState.PAUSED).orElse(false);
        return !process.execId().isEmpty() && state == ProcessState.RUNNING && initPaused ? ProcessState.PAUSED
                : state;
    }

    @Override
    public Flux<ProcessInfo> pids() {
        return onInit("list processes of", runc.pids(id()))
                .flatMapIterable(pids -> pids)
                .map(pid -> new ProcessInfo(pid, processes.execIdOf(pid).orElse("")));
    }

    @Override
    public Mono<Void> resize(String execId, TerminalSize size) {
        String action = "".equals(execId) ? "resize the terminal of" : "resize the terminal of exec " + execId
                + " in";
        if (size == null) {
            // The caller's bug, as the remote shim says it: not a failure of the task to map.
            return Mono.error(new NullPointerException("size"));
        }
        return Mono.defer(() -> {
            TaskProcess process = processes.get("resize the terminal of", execId);
            ProcessStdio stdio = process.stdio();
            if (stdio == null || !stdio.hasTerminal()) {
                throw new FailedPreconditionException(action + " " + task() + ": it has no terminal"
                        + (stdio != null && stdio.consoleSocket() != null ? " yet: it was not started" : ""));
            }
            if (process.exited().isPresent()) {
                throw new FailedPreconditionException(action + " " + task() + ": the process has exited");
            }
            return blocking(() -> {
                stdio.resize(size);
                return true;
            });
        }).onErrorMap(error -> map(action, error)).then();
    }

    /**
     * Prepares a terminal as runc's console socket and its master on the poll loop (the remote shim's terminal
     * is FIFOs); any other stdio as both shims do.
     */
    @Override
    protected ProcessStdio prepare(TaskProcess process, Stdio stdio, String action) throws IOException {
        if (stdio instanceof Stdio.Terminal terminal) {
            process.prepared(ProcessStdio.console(terminal, ioDir(), process.name(), resources.pollLoop(),
                    resources.io()));
            return process.stdio();
        }
        return super.prepare(process, stdio, action);
    }

    /**
     * The bundle's process asks for a terminal exactly when the init's stdio is one, checked before runc runs, so a
     * mismatch is named as the spec's and leaves nothing to undo. Blocking.
     */
    private void requireTerminal(Stdio stdio) throws IOException {
        Path config = bundle.configFile();
        // No config at all is runc's to report, in its words.
        if (Files.isRegularFile(config, LinkOption.NOFOLLOW_LINKS)) {
            Specs.requireTerminal(task(), Files.readAllBytes(config), true, stdio instanceof Stdio.Terminal);
        }
    }

    @Override
    public Mono<Void> closeIo(String execId) {
        return Mono.fromRunnable(() -> processes.get("close stdin of", execId).closeStdin())
                .onErrorMap(error -> map("close stdin of", error)).then();
    }

    @Override
    public Mono<Void> pause() {
        return pauseOrResume("pause", ProcessState.RUNNING, ProcessState.PAUSING, ProcessState.PAUSED,
                runc.pause(id()).then(publishQuietly(new TaskEvent.TaskPaused(id()))));
    }

    @Override
    public Mono<Void> resume() {
        return pauseOrResume("resume", ProcessState.PAUSED, ProcessState.RESUMING, ProcessState.RUNNING,
                runc.resume(id()).then(publishQuietly(new TaskEvent.TaskResumed(id()))));
    }

    private Mono<Void> pauseOrResume(String action, ProcessState from, ProcessState through, ProcessState to,
            Mono<Void> work) {
        return Mono.defer(() -> move(processes.get(action, ""), action, through, Set.of(from), to, moving -> work))
                .onErrorMap(error -> map(action, error));
    }

    @Override
    public Mono<Void> update(byte[] linuxResources) {
        return onInit("update", Mono.defer(() -> {
            // Before anything reaches runc, which called a non-object or an impossible limit an internal failure.
            ResourceUpdates.check("update " + task(), linuxResources);
            return keepingLimits(linuxResources, json -> runc.update(id(), json));
        })).onErrorMap(error -> ResourceUpdates.refused(task(), error));
    }

    @Override
    public Mono<ContainerStats> stats() {
        return onInit("get stats of",
                runc.stats(id()).map(json -> StatsDecoder.decode(new Stats(RuncStats.TYPE, json))));
    }

    @Override
    public Mono<Void> checkpoint(Path imagePath, boolean exit) {
        return onInit("checkpoint", runc.checkpoint(id(), imagePath, exit));
    }

    private <T> Mono<T> onInit(String action, Mono<T> work) {
        return Mono.defer(() -> {
            processes.get(action, "");
            return work;
        }).onErrorMap(error -> map(action, error));
    }

    @Override
    public Mono<Void> shutdown() {
        return Mono.defer(() -> {
            if (processes.find("").isPresent()) {
                return Mono.error(new FailedPreconditionException("shutdown " + task()
                        + ": the task still exists; delete it first"));
            }
            forget.run();
            return Mono.empty();
        });
    }

    @Override
    public Mono<Void> close() {
        // Nothing to disconnect: the container stays watched by this runtime, and a later client finds it.
        return Mono.empty();
    }

    /**
     * After a restart: watches an init found on disk again and reports its exit once, when it comes.
     * {@code launchedHere}: a runtime of this JVM created it (a reload since), so its init's exit came to this JVM:
     * an init gone already had it reaped and published by that runtime. An init adopted from another JVM is not
     * this JVM's child, and an exit nobody here saw is reported.
     */
    void recover(LocalRecord record, boolean launchedHere) {
        recoveredInit = true;
        int pid = record.pid();
        boolean started = launcher.startedByRunc(record);
        TaskProcess init = TaskProcess.recovered(task(), "", pid, !started ? ProcessState.CREATED
                : launcher.pausedByRunc() ? ProcessState.PAUSED : ProcessState.RUNNING);
        processes.adopt(init);
        if (!launcher.watchRecovered(init) && launchedHere) {
            // Gone already, reaped by an earlier runtime of this JVM, which published its exit: a reload reported
            // it a second time, with a made-up 137.
            init.startReportsExit();
            return;
        }
        if (started) {
            publishExitAfterStart(init);
        } else {
            publishExitUnlessStarted(init);
        }
    }

    /**
     * The init of a container runc made for this bundle but no runtime recorded: a runtime that stopped while its
     * {@code runc create} ran (the stop ends runc commands in flight) wrote no record and could not undo the
     * create, and the next one called the task not created while the bundle was in use by it: only a forced
     * delete removed it. Taken as of another JVM: its exit, if nobody saw it, is reported. Blocking.
     */
    Optional<LocalRecord> unrecordedInit() {
        return launcher.unrecordedInit();
    }

    /** Errors name the action and the task, as the remote shim's do: "start task ns/id: <why>". */
    private Throwable map(String action, Throwable error) {
        return TaskErrors.map(action, task(), error);
    }
}
