package org.shimmer.runtime.linux.shim;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.spec.HostLimits;
import org.shimmer.runtime.linux.spec.OciJson;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimException;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import org.shimmer.runtime.spec.Spec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;

/**
 * What the local and the remote shim client share: the bundle's task and its {@link ProcessTable}, how a process
 * is made (reserve, make, commit or undo), how an operation moves a process (run to its end, commit or roll back),
 * the streams' preparation, and the event stream of the task.
 */
public abstract class TaskClient implements ShimClient {

    private static final Logger log = LoggerFactory.getLogger(TaskClient.class);
    /** The highest signal number of Linux ({@code SIGRTMAX}). */
    private static final int MAX_SIGNAL = 64;

    protected final Bundle bundle;
    protected final RuntimeResources resources;
    protected final EventExchange exchange;
    protected final ProcessTable processes;
    /** The end of the last update asked of this client, which the next one waits for (see keepingLimits). */
    private final AtomicReference<Mono<Void>> lastUpdate = new AtomicReference<>(Mono.empty());

    /** With {@code ownsProcesses}, every process of the task is this client's (see {@link ProcessTable}). */
    protected TaskClient(Bundle bundle, RuntimeResources resources, EventExchange exchange, boolean ownsProcesses) {
        this.bundle = bundle;
        this.resources = resources;
        this.exchange = exchange;
        this.processes = new ProcessTable(task(), ownsProcesses);
    }

    @Override
    public final String id() {
        return bundle.id();
    }

    @Override
    public final String namespace() {
        return bundle.namespace();
    }

    /** The process gets a terminal exactly when {@code stdio} is one: its {@code terminal} is set to match. */
    @Override
    public final Mono<ProcessIo> exec(String execId, Spec.Process process, Stdio stdio) {
        return Mono.defer(() -> {
            boolean terminal = stdio instanceof Stdio.Terminal;
            Spec.Process matching = process == null || process.terminal() == terminal ? process
                    : process.toBuilder().terminal(terminal).build();
            byte[] json = OciJson.execProcess(matching);
            Mono<Void> check = matching.rlimits().isEmpty() ? Mono.empty()
                    : hostCheck("exec " + execId + " in", () -> HostLimits.checkProcess(matching));
            return check.then(Mono.defer(() -> exec(execId, json, stdio)));
        });
    }

    @Override
    public final Mono<Void> update(Spec.Resources resources) {
        return Mono.defer(() -> {
            byte[] json = OciJson.updateResources(resources);
            Mono<Void> check = resources.cpusetCpus() == null ? Mono.empty()
                    : hostCheck("update", () -> HostLimits.checkResources(resources, null));
            return check.then(Mono.defer(() -> update(json)));
        });
    }

    /**
     * {@code apply} of an update (already checked) that, when the kernel refuses one of its values, leaves the
     * container's limits as they were: those it touches in more than one controller are read first and set back
     * after a refusal (see {@link CgroupLimits}). The refusal is typed by {@link ResourceUpdates#refused}.
     *
     * <p>The updates of this client run one at a time, in the order asked: a refused one's setting back wrote the
     * limits it had read over those of an update that succeeded meanwhile, and two runc updates interleaved their
     * writes. One begun runs to its end, setting back included, when its caller cancels (runc runs on anyway, and
     * without its setting back a refusal left the first controllers' new limits); one cancelled before its turn is
     * not made.
     */
    protected final Mono<Void> keepingLimits(byte[] linuxResources, Function<byte[], Mono<Void>> apply) {
        Set<String> files = CgroupLimits.touched("update " + task(), linuxResources);
        return inTurn(files.isEmpty() ? Mono.defer(() -> apply.apply(linuxResources))
                : state().map(TaskState::pid).onErrorReturn(0)
                .flatMap(pid -> Mono.fromCallable(() -> CgroupLimits.read(pid, files)).subscribeOn(resources.io()))
                .onErrorMap(TaskErrors::rejected, stopped -> TaskErrors.map("update", task(), stopped))
                .flatMap(before -> apply.apply(linuxResources).onErrorResume(error -> {
                    Throwable refused = ResourceUpdates.refused(task(), error);
                    if (refused == error || before.isEmpty()) {
                        return Mono.error(refused);
                    }
                    log.debug("update {}: refused, setting back {}", task(), before);
                    return apply.apply(CgroupLimits.restoring(before))
                            .onErrorResume(notRestored -> {
                                refused.addSuppressed(notRestored);
                                return Mono.empty();
                            })
                            .then(Mono.error(refused));
                })));
    }

    /** {@code update} once every update asked of this client before it has ended; see {@link #keepingLimits}. */
    private Mono<Void> inTurn(Mono<Void> update) {
        return Mono.defer(() -> {
            Sinks.Empty<Void> ended = Sinks.empty();
            Mono<Void> before = lastUpdate.getAndSet(ended.asMono());
            AtomicBoolean cancelled = new AtomicBoolean();
            // Its end is kept for the caller, if still there: a caller gone is not told, nor is the end logged.
            Sinks.Empty<Void> result = Sinks.empty();
            before.then(Mono.defer(() -> cancelled.get() ? Mono.<Void>empty() : update))
                    .doFinally(signal -> ended.tryEmitEmpty())
                    .subscribe(null, result::tryEmitError, result::tryEmitEmpty);
            return result.asMono().doOnCancel(() -> cancelled.set(true));
        });
    }

    /**
     * {@code check} of the host's limits, which reads {@code /proc}, on the io scheduler; its refusal after a plugin
     * stop is the UnavailableException every other call of a kept handle answers, not Reactor's bare one.
     */
    private Mono<Void> hostCheck(String action, Runnable check) {
        return Mono.fromRunnable(check).subscribeOn(this.resources.io()).then()
                .onErrorMap(TaskErrors::rejected, stopped -> TaskErrors.map(action, task(), stopped));
    }

    /**
     * Ends with {@link org.shimmer.runtime.UnavailableException} at the runtime's stop, as the client's calls do,
     * unless the exchange is the host's (it outlives the stop).
     */
    @Override
    public final Flux<Envelope> events() {
        return resources.failedAtStop(TaskEvents.of(exchange, namespace(), id()), exchange, "events of " + task());
    }

    /**
     * Refuses a signal number Linux does not have before anything is sent: runc and the shim reported 999 or -1 as
     * an internal failure, though the caller's value is what is wrong.
     */
    protected final void requireSignal(String action, int signal) {
        if (signal < 1 || signal > MAX_SIGNAL) {
            throw new ShimException(ErrorCode.INVALID_ARGUMENT, action + " " + task() + ": invalid signal " + signal
                    + ", expected 1.." + MAX_SIGNAL);
        }
    }

    protected static final int SIGKILL = 9;

    /**
     * Signals {@code pid}, a process of a paused task, leaving it frozen: runc's kill --all thaws the task to
     * signal it. One gone meanwhile (killed by someone else) is skipped. Blocking.
     */
    protected static void signalFrozen(int pid, int signal) throws IOException {
        try {
            LinuxCalls.kill(pid, signal);
        } catch (IOException gone) {
            if (Files.exists(Path.of("/proc", Integer.toString(pid)))) {
                throw gone;
            }
        }
    }

    /** A kill's action naming the exec and its pid when known, e.g. "kill exec e1 (pid 42) in". */
    protected final String killAction(String execId) {
        if (ProcessTable.requireExecId(execId).isEmpty()) {
            return "kill";
        }
        int pid = processes.find(execId).map(TaskProcess::pid).orElse(0);
        return "kill exec " + execId + (pid > 0 ? " (pid " + pid + ")" : "") + " in";
    }

    /** The caller's stdin source for process {@code execId} ended. */
    protected abstract void stdinEnded(String execId);

    /**
     * Makes process {@code execId} ("" for init): reserves the id, runs {@code make} (which returns the pid, or 0
     * for an exec not started yet) to its end, and commits the process {@code CREATED}. On failure {@code onFailure}
     * undoes the outside part first and the reservation and streams go; a process nobody took (the caller
     * cancelled) is undone the same way after {@code onAbandon}.
     */
    protected Mono<ProcessIo> make(String action, String execId, Function<TaskProcess, Mono<Integer>> make,
            Function<TaskProcess, Mono<?>> onFailure, Function<TaskProcess, Mono<?>> onAbandon) {
        // The reservation is inside the work run to its end: a cancel can never fall between a reservation and
        // the work that ends it (the id would stay reserved, and every later call on it wait, for good).
        Mono<Made> work = processes.reserve(action, execId).flatMap(creating -> Mono.defer(
                        () -> make.apply(creating.process()))
                .map(pid -> new Made(creating, pid))
                .switchIfEmpty(Mono.error(() -> new IllegalStateException(action + " made nothing")))
                // The caller is told why the make failed, not why its undo did: a runtime stopping during a local
                // create cut runc ("runc create of ID was ended: the runtime stopped") and refused the undo's io,
                // and the refusal ("it takes no new work") was all the caller heard.
                .onErrorResume(error -> undo(creating, Mono.defer(() -> onFailure.apply(creating.process())))
                        .onErrorResume(undoFailed -> {
                            if (undoFailed != error) {
                                error.addSuppressed(undoFailed);
                            }
                            return Mono.empty();
                        })
                        .then(Mono.error(error))));
        // Committed only once the caller took it: until then a call on the process waits, and sees the process
        // made, or undone if the caller went away.
        return Operations.runToEnd(work, made -> undo(made.creating(), Mono.defer(
                        () -> onAbandon.apply(made.creating().process()))))
                .flatMap(made -> {
                    TaskProcess process = made.creating().process();
                    if (processes.find(execId).orElse(null) != process) {
                        // Its container was deleted meanwhile, and took the reservation with it.
                        return Operations.runToEnd(undo(made.creating(), Mono.defer(() -> onFailure.apply(process))))
                                .then(Mono.error(new NotFoundException(action + " " + process.name()
                                        + ": its container was deleted")));
                    }
                    made.creating().commit(ProcessState.CREATED);
                    if (execId.isEmpty()) {
                        // Init holds its stdin FIFO once created; an exec only once started.
                        process.startStdin(() -> stdinEnded(execId));
                    }
                    return Mono.just(process.io(made.pid()));
                });
    }

    private record Made(TaskProcess.Transition creating, int pid) {}

    private Mono<Void> undo(TaskProcess.Transition creating, Mono<?> first) {
        creating.moveThrough(ProcessState.DELETING);
        TaskProcess process = creating.process();
        AtomicBoolean ended = new AtomicBoolean();
        Runnable end = () -> {
            if (ended.compareAndSet(false, true)) {
                try {
                    forget(process);
                } finally {
                    creating.commit(ProcessState.DELETED);
                }
            }
        };
        // Out of the table before the caller learns how it ended: after doFinally, which runs once the signal went
        // downstream, a caller whose failed create returned went on to shutdown and was told the task still
        // existed (a CI run under load). doFinally stays for a cancel.
        return first.onErrorResume(error -> Mono.empty()).then(blocking(() -> {
            process.release();
            return true;
        })).then().doOnTerminate(end).doFinally(signal -> end.run());
    }

    /**
     * Runs {@code work} on {@code process} as operation {@code action}: begun (after any operation in flight) from
     * one of {@code from} through {@code through}, run to its end; on success the process is in {@code to} (and out
     * of the table when that is {@code DELETED}); on failure back where it was.
     */
    protected <T> Mono<T> move(TaskProcess process, String action, ProcessState through, Set<ProcessState> from,
            ProcessState to, Function<TaskProcess.Transition, Mono<T>> work) {
        // Begun inside the work run to its end, so no cancel falls between the transition and its end.
        return Operations.runToEnd(process.begin(action, through, from).flatMap(moving -> Mono.defer(
                        () -> work.apply(moving))
                .doOnSuccess(result -> {
                    if (to == ProcessState.DELETED) {
                        forget(process);
                    }
                    moving.commit(to);
                })
                // Back where it was before the caller learns of the failure (as undo does); doFinally for a cancel.
                .doOnError(error -> moving.close())
                .doFinally(signal -> moving.close())));
    }

    /**
     * Takes a deleted process out of the table; when it is init, its execs go with it in the same step (an exec
     * made while init was being deleted would otherwise stay, holding FIFOs for a container that is gone). Whoever
     * still waits for the exit of a process that never ran learns it is gone.
     */
    protected final void forget(TaskProcess process) {
        List<TaskProcess> execs = processes.remove(process);
        unwatchedWithContainer(execs);
        if (!execs.isEmpty()) {
            resources.io().schedule(() -> execs.forEach(TaskProcess::release));
        }
        if (process.exited().isEmpty()) {
            process.unwatched(new NotFoundException(process.name() + ": deleted before it ran"));
        }
    }

    /** Takes every exec out of the table, their container being deleted; the caller releases them. */
    protected final List<TaskProcess> dropExecs() {
        return unwatchedWithContainer(processes.removeExecs());
    }

    private static List<TaskProcess> unwatchedWithContainer(List<TaskProcess> execs) {
        for (TaskProcess gone : execs) {
            gone.unwatched(new NotFoundException(gone.name() + ": deleted with its container"));
        }
        return execs;
    }

    /** Publishes the exit once it happened; called only after the start event went out. */
    protected final void publishExitAfterStart(TaskProcess process) {
        process.startReportsExit();
        publishExit(process, process.awaitExit());
    }

    /**
     * Publishes the exit of an init that was created and may never start (killed, or deleted, while created), as
     * containerd's shim does; an init that a start then ran has its exit published by that start, after the start's
     * event. An exit seen while a start is in flight waits for that start's outcome. The local shim published no
     * {@code /tasks/exit} for a created init that was killed: a host waiting for one waited for good.
     */
    protected final void publishExitUnlessStarted(TaskProcess init) {
        publishExit(init, init.awaitExit()
                .flatMap(exit -> init.starting() ? init.settledNow().thenReturn(exit) : Mono.just(exit))
                .filter(exit -> !init.exitReportedByStart()));
    }

    private void publishExit(TaskProcess process, Mono<ExitStatus> exits) {
        exits
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

    protected final Mono<Void> publish(TaskEvent event) {
        return exchange.publish(namespace(), event.topic(), event);
    }

    /**
     * Publishes an event about something that already happened: a failure to publish must not undo it (a started
     * process rolled back to created would never have its exit reported).
     */
    protected final Mono<Void> publishQuietly(TaskEvent event) {
        return publish(event).onErrorResume(error -> {
            log.warn("could not publish {} of {}", event.topic(), task(), error);
            return Mono.empty();
        });
    }

    /** Prepares the streams of {@code process} in the work directory's {@code io}; returns them. Blocking. */
    protected ProcessStdio prepare(TaskProcess process, Stdio stdio, String action) throws IOException {
        String name = ProcessStdio.fifoName(id(), process.execId());
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

    protected final Path ioDir() {
        return bundle.workDir().resolve("io");
    }

    protected final String task() {
        return "task " + bundle.namespace() + "/" + bundle.id();
    }

    protected final <T> Mono<T> blocking(Callable<T> work) {
        return Mono.fromCallable(work).subscribeOn(resources.io());
    }
}
