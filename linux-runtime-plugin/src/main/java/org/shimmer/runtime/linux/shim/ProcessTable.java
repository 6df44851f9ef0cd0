package org.shimmer.runtime.linux.shim;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.NotFoundException;
import reactor.core.publisher.Mono;

/**
 * The processes of one task: init under the empty id, execs under theirs, as containerd's {@code runc.Container}
 * keeps them.
 *
 * <p>Invariant: an id is reserved before anything is made for it (containerd: {@code ReserveProcess} in
 * {@code service.Exec}); issue 10: the spec file was written before the id was reserved, so a racing exec of the
 * same id overwrote the winner's spec, which then ran. A reservation holds the id until its process is removed; a
 * new reservation of an id whose process has an operation in flight (a create, an abandoned create's undo, a
 * delete) waits for it to end, then succeeds if the id was freed and fails with {@link AlreadyExistsException}
 * otherwise.
 */
public final class ProcessTable {

    /**
     * The states of init an exec may be made in: the runc shim's init states refuse an exec when paused ("cannot
     * exec in a paused state") or stopped; the local shim took paused for allowed, unlike the remote one.
     */
    private static final Set<ProcessState> EXEC_INTO = Set.of(ProcessState.CREATED, ProcessState.RUNNING);

    private final String task;
    private final boolean execsNeedInit;
    private final Map<String, TaskProcess> processes = new HashMap<>();

    /**
     * The table of {@code task} ("task ns/id"); with {@code execsNeedInit}, an exec can only be reserved while init
     * is in the table (a shim that owns every process; a remote client may not know an init it did not create).
     */
    public ProcessTable(String task, boolean execsNeedInit) {
        this.task = task;
        this.execsNeedInit = execsNeedInit;
    }

    /**
     * Reserves {@code execId} ("" for init) for a new process, handing out its create transition: commit it
     * {@code CREATED} once made; on failure undo what was made, {@link #remove} it and close the transition.
     */
    public Mono<TaskProcess.Transition> reserve(String action, String execId) {
        return Mono.defer(() -> {
            TaskProcess occupant;
            synchronized (this) {
                TaskProcess init = processes.get("");
                if (!execId.isEmpty() && init == null && execsNeedInit) {
                    return Mono.error(new NotFoundException(action + " " + execId + " in " + task
                            + ": container not created: not found"));
                }
                ProcessState initState = init != null ? init.state() : null;
                if (!execId.isEmpty() && initState != null && initState.inFlight()) {
                    // containerd's initState.Exec: an exec waits for what init is going through, then may be refused.
                    return init.settledNow().then(reserve(action, execId));
                }
                if (!execId.isEmpty() && initState == ProcessState.PAUSED) {
                    return Mono.error(TaskProcess.stateRefused(action + " " + execId + " in " + task, "exec in",
                            initState, null));
                }
                if (!execId.isEmpty() && initState != null && !EXEC_INTO.contains(initState)) {
                    return Mono.error(new FailedPreconditionException(action + " " + execId + " in " + task
                            + ": the container is " + initState.name().toLowerCase()));
                }
                occupant = processes.get(execId);
                if (occupant == null) {
                    TaskProcess process = new TaskProcess(task, execId, ProcessState.DELETED);
                    processes.put(execId, process);
                    return Mono.just(process.creating());
                }
            }
            if (occupant.state().inFlight()) {
                return occupant.settledNow().then(reserve(action, execId));
            }
            return Mono.error(new AlreadyExistsException(action + " " + (execId.isEmpty() ? task
                    : execId + " in " + task) + ": already exists"));
        });
    }

    /** Puts a process found after a reload. */
    public synchronized void adopt(TaskProcess process) {
        processes.put(process.execId(), process);
    }

    /** The process of {@code execId}, or {@link NotFoundException} naming {@code action}. */
    public TaskProcess get(String action, String execId) {
        TaskProcess process = find(execId).orElse(null);
        if (process == null || process.state() == ProcessState.DELETED) {
            throw new NotFoundException(action + " " + (execId.isEmpty() ? task + ": container not created"
                    : "exec " + execId + " in " + task) + ": not found");
        }
        return process;
    }

    /** The process of {@code execId}, if reserved; an id no exec can have is refused ({@link #requireExecId}). */
    public Optional<TaskProcess> find(String execId) {
        requireExecId(execId);
        synchronized (this) {
            return Optional.ofNullable(processes.get(execId));
        }
    }

    /**
     * Refuses an exec id no exec can have, typed and naming it, as {@code exec} does: {@code ""} is init's, any
     * other must be a valid identifier. Calls other than exec once answered null with a bare
     * NullPointerException, some of them thrown before any {@code Mono} existed.
     */
    public static String requireExecId(String execId) {
        if (execId == null || !execId.isEmpty()) {
            Identifiers.requireValid("exec id", execId);
        }
        return execId;
    }

    /**
     * The process of {@code execId}, or one standing in for a process the shim has and this table does not (this
     * client reattached): not in the table, in state {@code assumed}, so the shim decides.
     */
    public TaskProcess findOrUntracked(String execId, ProcessState assumed) {
        return find(execId).orElseGet(() -> new TaskProcess(task, execId, assumed));
    }

    /** The exec whose pid is {@code pid}, if any. */
    public synchronized Optional<String> execIdOf(int pid) {
        return processes.values().stream().filter(process -> !process.execId().isEmpty() && process.pid() == pid)
                .map(TaskProcess::execId).findFirst();
    }

    /**
     * Frees the id of {@code process}, if it still holds it; when it is init, every exec goes too, and is returned
     * (their container is gone) for the caller to release.
     */
    public synchronized List<TaskProcess> remove(TaskProcess process) {
        boolean removed = processes.remove(process.execId(), process);
        // An init this table never held (a reattached client's) takes the execs too, unless a new init is there.
        if (!process.execId().isEmpty() || (!removed && processes.containsKey(""))) {
            return List.of();
        }
        return removeExecs();
    }

    /** Removes every exec and returns them (their container is gone). */
    public synchronized List<TaskProcess> removeExecs() {
        List<TaskProcess> execs = new ArrayList<>();
        processes.values().removeIf(process -> {
            if (process.execId().isEmpty()) {
                return false;
            }
            execs.add(process);
            return true;
        });
        return execs;
    }

    /** Every process now in the table. */
    public synchronized List<TaskProcess> all() {
        return List.copyOf(processes.values());
    }
}
