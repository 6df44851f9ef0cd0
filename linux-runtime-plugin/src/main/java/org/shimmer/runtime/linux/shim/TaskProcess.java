package org.shimmer.runtime.linux.shim;

import java.time.Duration;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.TaskState;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;

/**
 * One process of a task, init or exec, as both shims see it: its state, its pid, its exit, and the life of its
 * standard streams. containerd keeps the same per process ({@code pkg/process}: {@code Init}, {@code execProcess}
 * and their state objects, {@code io.go}).
 *
 * <p>Invariants: every state change happens under this object's lock, through a {@link Transition} that an
 * operation {@link #begin begins} and then commits or rolls back — so a failed start leaves the process
 * {@code CREATED} (containerd: {@code createdState.Start} returns the error and stays), and a delete that arrives
 * while a start is in flight is refused instead of taking the process for never started (issue 10: it ran
 * {@code runc delete --force} on a container being started). At most one operation is in flight per process. Its
 * streams go through one lifecycle: prepared, launched (the output FIFOs stop being held open for the launcher),
 * stdin started (only once the process holds the FIFO's read end), output drained, released.
 */
public final class TaskProcess {

    /** How long, after an exit, waiting for the rest of its output may take; output nobody reads is dropped then. */
    public static final Duration DRAIN_TIMEOUT = Duration.ofSeconds(5);

    private final String task;
    private final String execId;
    private final Sinks.One<ExitStatus> exit = Sinks.one();
    /** Set once a start succeeded: that start reports the exit, after its own start event. */
    private volatile boolean startReportsExit;
    private volatile ProcessStdio stdio;
    private ProcessState state;
    private Transition current;
    private int pid;
    private ExitStatus exited;
    /** When the first wait for the output after the exit began ({@link System#nanoTime}); guarded by this. */
    private long drainBegan;
    private boolean draining;

    TaskProcess(String task, String execId, ProcessState initial) {
        this.task = task;
        this.execId = execId;
        this.state = initial;
    }

    /** A process found running (after a reload): no stream of ours, state as found. */
    public static TaskProcess recovered(String task, String execId, int pid, ProcessState state) {
        TaskProcess process = new TaskProcess(task, execId, state);
        process.pid = pid;
        return process;
    }

    /** The exec id; empty for init. */
    public String execId() {
        return execId;
    }

    /** "task ns/id" or "exec e1 in task ns/id", for messages. */
    public String name() {
        return execId.isEmpty() ? task : "exec " + execId + " in " + task;
    }

    public synchronized int pid() {
        return pid;
    }

    public synchronized void pid(int pid) {
        this.pid = pid;
    }

    /** The state now; a process whose exit is known and that no operation holds is {@code STOPPED}. */
    public synchronized ProcessState state() {
        return settled(state);
    }

    private ProcessState settled(ProcessState raw) {
        return exited != null && (raw == ProcessState.CREATED || raw == ProcessState.RUNNING
                || raw == ProcessState.PAUSED) ? ProcessState.STOPPED : raw;
    }

    /** Whether a start is in flight now: its outcome decides who reports the exit. */
    public synchronized boolean starting() {
        return state == ProcessState.STARTING;
    }

    /** The exit, once known. */
    public synchronized Optional<ExitStatus> exited() {
        return Optional.ofNullable(exited);
    }

    /** The task API's view of this process, for {@code task}'s id. */
    public synchronized TaskState taskState(String id, ProcessState shown) {
        return new TaskState(id, execId, pid, shown.status(), exited != null ? exited.status() : 0,
                exited != null ? Optional.of(exited.exitedAt()) : Optional.empty());
    }

    /**
     * Begins {@code action} (e.g. "start") once no other operation is in flight on the process (containerd holds
     * the process's mutex for the length of each operation): moves it from one of {@code from} to the transient
     * state {@code through}. Refused with the typed error of containerd's state objects when the process is
     * elsewhere: {@link FailedPreconditionException} for a wrong state, {@link NotFoundException} once deleted.
     * Issue 10: a call right after a cancelled one found the operation half done (a delete found the create of its
     * task still in flight); now it sees it finished, or undone.
     */
    public Mono<Transition> begin(String action, ProcessState through, Set<ProcessState> from) {
        return Mono.defer(() -> {
            Mono<Void> busy;
            synchronized (this) {
                if (current == null || current.done) {
                    ProcessState now = settled(state);
                    if (!from.contains(now)) {
                        return Mono.error(refusal(action, now));
                    }
                    current = new Transition(state, now);
                    state = through;
                    return Mono.just(current);
                }
                busy = current.ended.asMono();
            }
            return busy.then(begin(action, through, from));
        });
    }

    /** The state once the operation in flight, if any, has ended. */
    public Mono<ProcessState> settledState() {
        return settledNow().then(Mono.fromSupplier(this::state));
    }

    /** Begins the create of a process just reserved; only {@link ProcessTable} calls it. */
    synchronized Transition creating() {
        current = new Transition(ProcessState.DELETED, ProcessState.DELETED);
        state = ProcessState.CREATING;
        return current;
    }

    private ShimmerException refusal(String action, ProcessState now) {
        String prefix = action + " " + name() + ": ";
        return switch (now) {
            case DELETED -> new NotFoundException(prefix + "not found");
            case CREATING -> new FailedPreconditionException(prefix + "it is being created");
            case STARTING -> new FailedPreconditionException(prefix + "it is being started");
            case DELETING -> new FailedPreconditionException(prefix + "it is being deleted");
            case PAUSING, RESUMING -> new FailedPreconditionException(prefix + "it is being paused or resumed");
            case PAUSED -> action.startsWith("delete") ? pausedDeleteRefused(action, name(), null)
                    : action.equals("pause") ? stateRefused(action + " " + name(), "pause", now, null)
                    : new FailedPreconditionException(prefix + (action.startsWith("start") ? "already started"
                            : "it is paused"));
            case RUNNING -> action.equals("resume") ? stateRefused(action + " " + name(), "resume", now, null)
                    : new FailedPreconditionException(prefix + (action.startsWith("start")
                            ? "already started" : action.startsWith("delete") ? "cannot delete a running process"
                            : "it is running"));
            case STOPPED -> new FailedPreconditionException(prefix + "cannot " + verb(action) + " a stopped process");
            case CREATED -> new FailedPreconditionException(prefix + "cannot " + verb(action)
                    + " a process that was never started");
        };
    }

    /**
     * The refusal of {@code action} (a delete) of the paused process {@code name}, in the same words on both shims,
     * naming its state: the local shim said "cannot delete a running process" of it, the runc shim says "cannot
     * delete a paused process" ({@code cause}, its answer, or null).
     */
    public static FailedPreconditionException pausedDeleteRefused(String action, String name, Throwable cause) {
        return stateRefused(action + " " + name, "delete", ProcessState.PAUSED, cause);
    }

    /**
     * The refusal of {@code subject} (an action and what it was asked of: "pause task ns/id") because the process is
     * in {@code state}, in the same words on both shims: "cannot {@code what} a paused process (state PAUSED)". The
     * runc shim words these its own way ("cannot pause a paused container", "cannot exec in a paused state") and
     * the local shim said "it is paused"; {@code cause} is the shim's answer, or null.
     */
    public static FailedPreconditionException stateRefused(String subject, String what, ProcessState state,
            Throwable cause) {
        return new FailedPreconditionException(subject + ": cannot " + what + " a "
                + state.name().toLowerCase(Locale.ROOT) + " process (state " + state + ")", cause);
    }

    private static String verb(String action) {
        int space = action.indexOf(' ');
        return space < 0 ? action : action.substring(0, space);
    }

    /** Completes when the operation now in flight, if any, has ended either way. */
    public synchronized Mono<Void> settledNow() {
        return current != null && !current.done ? current.ended.asMono() : Mono.empty();
    }

    /** Records the exit (the monitor saw it, or the shim reported it); a process has one exit. */
    public void exited(ExitStatus status) {
        synchronized (this) {
            if (exited != null) {
                return;
            }
            exited = status;
        }
        exit.tryEmitValue(status);
    }

    /** Nobody can learn the exit any more (the runtime stopped): whoever waits for it gets {@code why}. */
    public void unwatched(Throwable why) {
        exit.tryEmitError(why);
    }

    /** A start succeeded and reports the exit itself, after its start event. */
    public void startReportsExit() {
        startReportsExit = true;
    }

    /** Whether a start took over the report of the exit ({@link #startReportsExit}). */
    public boolean exitReportedByStart() {
        return startReportsExit;
    }

    /** Completes with the exit, once known. */
    public Mono<ExitStatus> awaitExit() {
        return exit.asMono();
    }

    // ---- the streams' lifecycle

    /** The streams this process was launched with; none for a process found after a reload. */
    public void prepared(ProcessStdio stdio) {
        this.stdio = stdio;
    }

    /** The prepared streams, or null. */
    public ProcessStdio stdio() {
        return stdio;
    }

    /** The caller's view of the streams. */
    public ProcessIo io(int pid) {
        ProcessStdio current = stdio;
        return current != null ? current.io(pid) : new ProcessIo(pid, Flux.empty(), Flux.empty());
    }

    /** A launch of it begins: what {@link ProcessStdio#beginLaunch()} says. */
    public void beginLaunch() {
        ProcessStdio current = stdio;
        if (current != null) {
            current.beginLaunch();
        }
    }

    /** The launch happened, or failed: the output FIFOs are no longer held open for the launcher. */
    public void launched() {
        ProcessStdio current = stdio;
        if (current != null) {
            current.launched();
        }
    }

    /** The launch failed: what {@link ProcessStdio#abandoned()} says. */
    public void launchFailed() {
        ProcessStdio current = stdio;
        if (current != null) {
            current.abandoned();
        }
    }

    /** The process now holds its stdin FIFO: start feeding it; {@code onEnd} runs when the caller's source ends. */
    public void startStdin(Runnable onEnd) {
        ProcessStdio current = stdio;
        if (current != null) {
            current.startStdin(onEnd);
        }
    }

    /** Stops feeding stdin and closes our end. */
    public void closeStdin() {
        ProcessStdio current = stdio;
        if (current != null) {
            current.closeStdin();
        }
    }

    /**
     * What {@code awaitExit} promises on both shims: {@code exit}, once the output someone subscribed to was read
     * to its end (at most {@link #DRAIN_TIMEOUT} after the exit). Issue 10: the runc shim answers Wait before it
     * copied the last output, and a caller that stopped reading at the exit lost the tail.
     */
    public Mono<ExitStatus> withOutput(Mono<ExitStatus> exit) {
        return exit.flatMap(status -> {
            ProcessStdio current = stdio;
            return current == null ? Mono.just(status) : current.outputEnded(drainLeft()).thenReturn(status);
        });
    }

    /**
     * What is left of the one {@link #DRAIN_TIMEOUT} a process's output gets after its exit, which the first wait
     * for it starts: awaitExit's and the delete's after it each waited a full one, so an exec whose background
     * child held its output open was deleted 10 s after its exit.
     */
    private synchronized Duration drainLeft() {
        long now = System.nanoTime();
        if (!draining) {
            draining = true;
            drainBegan = now;
        }
        Duration left = DRAIN_TIMEOUT.minusNanos(now - drainBegan);
        return left.isNegative() ? Duration.ZERO : left;
    }

    /** Waits for the subscribed output as {@link #withOutput} does, then releases the streams. */
    public Mono<Void> drained() {
        ProcessStdio current = stdio;
        if (current == null) {
            return Mono.empty();
        }
        // A process never started still has its output held open for a launcher, and its terminal waits for a
        // master: both must end for the drain to.
        current.abandoned();
        return current.drained(drainLeft());
    }

    /** Releases the streams now: readers closed, stdin copy stopped, FIFOs removed. Blocking; idempotent. */
    public void release() {
        ProcessStdio current = stdio;
        if (current != null) {
            current.release();
        }
    }

    /**
     * One operation on the process: entered by {@link #begin}, left by {@link #commit} or, on any other outcome
     * (error, cancel), by {@link #close} back to the state it came from. Both are idempotent and only the first
     * counts, so {@code close} can be called unconditionally when the operation ends.
     */
    public final class Transition implements AutoCloseable {
        private final ProcessState from;
        private final ProcessState was;
        private final Sinks.Empty<Void> ended = Sinks.empty();
        private boolean done;

        private Transition(ProcessState from, ProcessState was) {
            this.from = from;
            this.was = was;
        }

        /** The state the process was in when the operation began. */
        public ProcessState was() {
            return was;
        }

        /** The process this transition moves. */
        public TaskProcess process() {
            return TaskProcess.this;
        }

        /** Changes what is in flight (an abandoned create is now being undone). */
        public void moveThrough(ProcessState through) {
            synchronized (TaskProcess.this) {
                if (!done) {
                    state = through;
                }
            }
        }

        /** Ends the operation in {@code to}. */
        public void commit(ProcessState to) {
            end(to);
        }

        /** Ends the operation where it began, unless it was committed. */
        @Override
        public void close() {
            end(from);
        }

        private void end(ProcessState to) {
            synchronized (TaskProcess.this) {
                if (done) {
                    return;
                }
                done = true;
                state = to;
            }
            ended.tryEmitEmpty();
        }
    }
}
