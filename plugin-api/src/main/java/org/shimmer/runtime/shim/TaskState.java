package org.shimmer.runtime.shim;

import java.time.Instant;
import java.util.Optional;

/**
 * A process's state as its shim reports it.
 *
 * @param id the container id
 * @param execId the exec id, empty for the init process
 * @param pid the process id, 0 before it exists
 * @param status the lifecycle status
 * @param exitStatus the exit status, meaningful when {@link Status#STOPPED}
 * @param exitedAt when it exited, if it has
 */
public record TaskState(String id, String execId, int pid, Status status, int exitStatus, Optional<Instant> exitedAt) {

    /** containerd's task statuses. */
    public enum Status { UNKNOWN, CREATED, RUNNING, STOPPED, PAUSED, PAUSING }
}
