package org.shimmer.runtime.linux.shim.local;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Set;
import java.util.concurrent.Callable;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.bundle.Specs;
import org.shimmer.runtime.linux.poll.ExitMonitor;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.runc.Runc;
import org.shimmer.runtime.linux.shim.Operations;
import org.shimmer.runtime.linux.shim.ProcessState;
import org.shimmer.runtime.linux.shim.ProcessTable;
import org.shimmer.runtime.linux.shim.TaskErrors;
import org.shimmer.runtime.linux.shim.TaskEvents;
import org.shimmer.runtime.linux.shim.TaskProcess;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ProcessInfo;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.Stats;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * The shim contract implemented in the JVM: drives {@code runc} itself, learns exits from the {@link ExitMonitor},
 * and publishes containerd's task events, with the same topics and payloads, into the runtime's exchange. The
 * processes and their states are the shared {@link TaskProcess} model; cancelling an operation never stops it
 * halfway ({@link Operations}).
 *
 * <p>Invariants: a process's exit event is published only after its start event (containerd #8617); an exec
 * cannot start once init has exited (containerd #10651); a create that fails or that nobody took removes what it
 * made and nothing else.
 */
final class LocalShimClient implements ShimClient {

    static final String STATS_TYPE = "application/vnd.runc.stats+json";

    private static final Logger log = LoggerFactory.getLogger(LocalShimClient.class);
    private static final Set<ProcessState> NOT_STARTED = Set.of(ProcessState.CREATED);
    private static final Set<ProcessState> DELETABLE = Set.of(ProcessState.CREATED, ProcessState.STOPPED);

    private final Bundle bundle;
    private final Runc runc;
    private final RuntimeResources resources;
    private final ExitMonitor monitor;
    private final EventExchange exchange;
    private final Runnable forget;
    private final LocalLauncher launcher;
    private final ProcessTable processes;
    private volatile LocalLauncher.Made made = new LocalLauncher.Made();

    LocalShimClient(Bundle bundle, Runc runc, RuntimeResources resources, ExitMonitor monitor,
            EventExchange exchange, Runnable forget) {
        this.bundle = bundle;
        this.runc = runc;
        this.resources = resources;
        this.monitor = monitor;
        this.exchange = exchange;
        this.forget = forget;
        this.launcher = new LocalLauncher(bundle, runc, monitor, resources);
        this.processes = new ProcessTable(task());
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
            TaskProcess init = creating.process();
            LocalLauncher.Made making = new LocalLauncher.Made();
            Mono<ProcessIo> work = launcher.create(init, options, making)
                    .flatMap(pid -> publish(new TaskEvent.TaskCreate(id(), bundle.path().toString(),
                            options.rootfs().stream().map(m -> new TaskEvent.TaskMount(m.type(), m.source(),
                                    m.options())).toList(), pid)).thenReturn(pid))
                    .map(pid -> {
                        made = making;
                        creating.commit(ProcessState.CREATED);
                        init.startStdin(() -> {});
                        return init.io(pid);
                    })
                    .onErrorResume(error -> undoCreate(creating, making).then(Mono.error(error)));
            return Operations.runToEnd(work, io -> undoCreate(creating, making));
        }).onErrorMap(error -> map("create", error));
    }

    private Mono<Void> undoCreate(TaskProcess.Transition creating, LocalLauncher.Made making) {
        creating.moveThrough(ProcessState.DELETING);
        return launcher.undoCreate(creating.process(), making)
                .doFinally(signal -> {
                    processes.remove(creating.process());
                    creating.commit(ProcessState.DELETED);
                });
    }

    @Override
    public Mono<Integer> start(String execId) {
        String action = execId.isEmpty() ? "start" : "start exec " + execId + " in";
        return Mono.defer(() -> {
            TaskProcess process = processes.get(action, execId);
            // containerd #10651: an exec must not start once init has exited (its namespaces are going away).
            if (!execId.isEmpty() && processes.get(action, "").state() == ProcessState.STOPPED) {
                throw new FailedPreconditionException(action + " " + task() + ": the container is not running");
            }
            TaskProcess.Transition starting = process.begin("start", ProcessState.STARTING, NOT_STARTED);
            Mono<Integer> launch = execId.isEmpty()
                    ? runc.start(id()).then(blocking(() -> {
                        new LocalRecord(process.pid(), true).write(bundle.workDir());
                        return process.pid();
                    }))
                    : launcher.exec(process);
            return Operations.runToEnd(launch
                    .flatMap(pid -> publish(execId.isEmpty() ? new TaskEvent.TaskStart(id(), pid)
                            : new TaskEvent.TaskExecStarted(id(), execId, pid)).thenReturn(pid))
                    .doOnNext(pid -> {
                        starting.commit(ProcessState.RUNNING);
                        // Only now does an exec hold its stdin FIFO's read end: start feeding it.
                        process.startStdin(() -> {});
                        publishExitAfterStart(process);
                    })
                    .doFinally(signal -> starting.close()));
        }).onErrorMap(error -> map(action, error));
    }

    /** Publishes the exit once it happened; called only after the start event went out. */
    private void publishExitAfterStart(TaskProcess process) {
        process.awaitExit()
                .flatMap(exit -> publish(new TaskEvent.TaskExit(id(), process.execId().isEmpty() ? id()
                        : process.execId(), exit.pid(), exit.status(), exit.exitedAt())))
                .subscribe(done -> {}, error -> {
                    if (error instanceof UnavailableException) {
                        log.debug("{}: {}", task(), error.getMessage());
                    } else {
                        log.warn("could not publish the exit of {}", process.name(), error);
                    }
                });
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
        return Mono.defer(() -> {
            processes.get("kill", "");
            return runc.kill(id(), signal, all);
        }).onErrorMap(error -> map("kill", error));
    }

    @Override
    public Mono<Void> kill(String execId, int signal) {
        return Mono.defer(() -> {
            TaskProcess process = processes.get("kill", execId);
            return blocking(() -> {
                if (process.pid() == 0 || process.exited().isPresent() || !monitor.signal(process.pid(), signal)) {
                    throw new NotFoundException("kill " + process.name() + ": process already finished: not found");
                }
                return true;
            }).then();
        }).onErrorMap(error -> map("kill", error));
    }

    @Override
    public Mono<ExitStatus> delete(String execId) {
        String action = execId.isEmpty() ? "delete" : "delete exec " + execId + " in";
        return Mono.defer(() -> {
            TaskProcess process = processes.get(action, execId);
            boolean neverStarted = process.state() == ProcessState.CREATED;
            TaskProcess.Transition deleting = process.begin("delete", ProcessState.DELETING, DELETABLE);
            Mono<ExitStatus> work = execId.isEmpty() ? deleteInit(process, neverStarted) : deleteExec(process);
            return Operations.runToEnd(work
                    .doOnNext(exit -> {
                        processes.remove(process);
                        deleting.commit(ProcessState.DELETED);
                    })
                    .doFinally(signal -> deleting.close()));
        }).onErrorMap(error -> map(action, error));
    }

    private Mono<ExitStatus> deleteInit(TaskProcess init, boolean neverStarted) {
        // A created, never started init is killed by the forced delete; its exit then arrives as usual.
        return runc.delete(id(), neverStarted)
                .then(init.awaitExit())
                .flatMap(exit -> init.drained().thenReturn(exit))
                .flatMap(exit -> blocking(() -> {
                    // Execs never deleted go with their container.
                    for (TaskProcess exec : processes.removeExecs()) {
                        exec.release();
                        launcher.removeExecFiles(exec.execId());
                    }
                    launcher.removeContainerFiles(made);
                    return exit;
                }))
                .flatMap(exit -> publish(new TaskEvent.TaskDelete(id(), exit.pid(), exit.status(),
                        exit.exitedAt())).thenReturn(exit));
    }

    private Mono<ExitStatus> deleteExec(TaskProcess exec) {
        ExitStatus exit = exec.exited().orElseGet(() -> new ExitStatus(0, 0, Instant.now()));
        return exec.drained().then(blocking(() -> {
            launcher.removeExecFiles(exec.execId());
            return exit;
        }));
    }

    @Override
    public Mono<TaskState> state(String execId) {
        return Mono.fromCallable(() -> {
            TaskProcess process = processes.get("get state of", execId);
            return process.taskState(id(), process.state());
        }).onErrorMap(error -> map("get state of", error));
    }

    @Override
    public Flux<ProcessInfo> pids() {
        return Mono.defer(() -> {
                    processes.get("list processes of", "");
                    return runc.pids(id());
                })
                .flatMapIterable(pids -> pids)
                .map(pid -> new ProcessInfo(pid, processes.execIdOf(pid).orElse("")))
                .onErrorMap(error -> map("list processes of", error));
    }

    @Override
    public Mono<ProcessIo> exec(String execId, byte[] processSpec, Stdio stdio) {
        String action = "exec " + execId + " in";
        return Mono.defer(() -> {
            // Before any path is built from the id: "../x" would name a file outside the work directory.
            Identifiers.requireValid("exec id", execId);
            Specs.requireJsonObject(action + " " + task(), processSpec);
            processes.get(action, "");
            return processes.reserve("exec", execId);
        }).flatMap(creating -> {
            TaskProcess exec = creating.process();
            Mono<ProcessIo> work = blocking(() -> {
                launcher.prepare(exec, stdio);
                launcher.writeExecSpec(execId, processSpec);
                return true;
            }).then(publish(new TaskEvent.TaskExecAdded(id(), execId))).then(Mono.fromCallable(() -> {
                creating.commit(ProcessState.CREATED);
                return exec.io(0);
            })).onErrorResume(error -> undoExec(creating).then(Mono.error(error)));
            return Operations.runToEnd(work, io -> undoExec(creating));
        }).onErrorMap(error -> map(action, error));
    }

    private Mono<Void> undoExec(TaskProcess.Transition creating) {
        creating.moveThrough(ProcessState.DELETING);
        TaskProcess exec = creating.process();
        return blocking(() -> {
            exec.release();
            launcher.removeExecFiles(exec.execId());
            return true;
        }).then().doFinally(signal -> {
            processes.remove(exec);
            creating.commit(ProcessState.DELETED);
        });
    }

    @Override
    public Mono<Void> closeIo(String execId) {
        return Mono.fromRunnable(() -> processes.get("close stdin of", execId).closeStdin())
                .onErrorMap(error -> map("close stdin of", error)).then();
    }

    @Override
    public Mono<Void> pause() {
        return pauseOrResume("pause", ProcessState.RUNNING, ProcessState.PAUSING, ProcessState.PAUSED,
                runc.pause(id()).then(publish(new TaskEvent.TaskPaused(id()))));
    }

    @Override
    public Mono<Void> resume() {
        return pauseOrResume("resume", ProcessState.PAUSED, ProcessState.RESUMING, ProcessState.RUNNING,
                runc.resume(id()).then(publish(new TaskEvent.TaskResumed(id()))));
    }

    private Mono<Void> pauseOrResume(String action, ProcessState from, ProcessState through, ProcessState to,
            Mono<Void> work) {
        return Mono.defer(() -> {
            TaskProcess.Transition moving = processes.get(action, "").begin(action, through, Set.of(from));
            return Operations.runToEnd(work.then(Mono.fromRunnable(() -> moving.commit(to)))
                    .doFinally(signal -> moving.close())).then();
        }).onErrorMap(error -> map(action, error));
    }

    @Override
    public Mono<Void> update(byte[] linuxResources) {
        return onInit("update", runc.update(id(), linuxResources));
    }

    @Override
    public Mono<Stats> stats() {
        return onInit("get stats of", runc.stats(id()).map(json -> new Stats(STATS_TYPE, json)));
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

    @Override
    public Flux<Envelope> events() {
        return TaskEvents.of(exchange, namespace(), id());
    }

    /** After a restart: watches an init found on disk again and reports its exit once, when it comes. */
    void recover(int pid, boolean started) {
        TaskProcess init = TaskProcess.recovered(task(), "", pid, started ? ProcessState.RUNNING
                : ProcessState.CREATED);
        processes.adopt(init);
        try {
            monitor.watch(pid).subscribe(init::exited, init::unwatched);
        } catch (IOException gone) {
            // It exited and was reaped elsewhere (the JVM that was its parent is gone): the status is lost.
            log.warn("local task {} (pid {}) ended while no runtime watched it; reporting exit 137", task(), pid);
            init.exited(new ExitStatus(pid, 137, Instant.now()));
        }
        if (started) {
            publishExitAfterStart(init);
        }
    }

    private Mono<Void> publish(TaskEvent event) {
        return exchange.publish(namespace(), event.topic(), event);
    }

    private String task() {
        return "task " + namespace() + "/" + id();
    }

    private <T> Mono<T> blocking(Callable<T> work) {
        return Mono.fromCallable(work).subscribeOn(resources.io());
    }

    /** Errors name the action and the task, as the remote shim's do: "start task ns/id: <why>". */
    private Throwable map(String action, Throwable error) {
        return TaskErrors.map(action, task(), error);
    }
}
