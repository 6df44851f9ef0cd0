package org.shimmer.runtime.linux.shim;

import org.shimmer.runtime.shim.TaskState;

/**
 * Where one process of a task is in its life, as containerd's {@code pkg/process} states it (created, running,
 * paused, stopped, deleted), plus the transient states of an operation in flight ({@code CREATING},
 * {@code STARTING}, {@code PAUSING}, {@code RESUMING}, {@code DELETING}). A transient state is left only by the
 * operation that entered it: to its target when it succeeds, back to where it came from when it fails.
 */
public enum ProcessState {
    CREATING,
    CREATED,
    STARTING,
    RUNNING,
    PAUSING,
    PAUSED,
    RESUMING,
    STOPPED,
    DELETING,
    DELETED;

    /** Whether an operation is in flight. */
    public boolean inFlight() {
        return switch (this) {
            case CREATING, STARTING, PAUSING, RESUMING, DELETING -> true;
            default -> false;
        };
    }

    /** Whether the process has been started and may still run (its exit not known yet). */
    public boolean live() {
        return switch (this) {
            case STARTING, RUNNING, PAUSING, PAUSED, RESUMING -> true;
            default -> false;
        };
    }

    /** What the task API reports for it. */
    public TaskState.Status status() {
        return switch (this) {
            case CREATING, CREATED, STARTING -> TaskState.Status.CREATED;
            case RUNNING, RESUMING -> TaskState.Status.RUNNING;
            case PAUSING -> TaskState.Status.PAUSING;
            case PAUSED -> TaskState.Status.PAUSED;
            case STOPPED, DELETING, DELETED -> TaskState.Status.STOPPED;
        };
    }
}
