package org.shimmer.runtime.events.task;

import java.time.Instant;
import java.util.List;

/**
 * The task events a shim reports, as plain values: what {@link org.shimmer.runtime.events.Envelope#event()} holds
 * on the {@code /tasks/...} topics. Field meanings follow containerd's {@code containerd.events} messages.
 */
public sealed interface TaskEvent {

    /** The container the event is about. */
    String containerId();

    /** The topic this event is published on. */
    String topic();

    /** {@code /tasks/create}: the init process exists (created, not started). */
    record TaskCreate(String containerId, String bundle, List<TaskMount> rootfs, int pid) implements TaskEvent {
        public String topic() {
            return "/tasks/create";
        }
    }

    /** {@code /tasks/start}: the init process runs. */
    record TaskStart(String containerId, int pid) implements TaskEvent {
        public String topic() {
            return "/tasks/start";
        }
    }

    /**
     * {@code /tasks/exit}: a process exited.
     *
     * @param id the process: the container id for init, the exec id for an exec
     */
    record TaskExit(String containerId, String id, int pid, int exitStatus, Instant exitedAt) implements TaskEvent {
        public String topic() {
            return "/tasks/exit";
        }
    }

    /** {@code /tasks/delete}: the init process was deleted. */
    record TaskDelete(String containerId, int pid, int exitStatus, Instant exitedAt) implements TaskEvent {
        public String topic() {
            return "/tasks/delete";
        }
    }

    /** {@code /tasks/exec-added}: an exec process was created. */
    record TaskExecAdded(String containerId, String execId) implements TaskEvent {
        public String topic() {
            return "/tasks/exec-added";
        }
    }

    /** {@code /tasks/exec-started}: an exec process runs. */
    record TaskExecStarted(String containerId, String execId, int pid) implements TaskEvent {
        public String topic() {
            return "/tasks/exec-started";
        }
    }

    /** {@code /tasks/paused}. */
    record TaskPaused(String containerId) implements TaskEvent {
        public String topic() {
            return "/tasks/paused";
        }
    }

    /** {@code /tasks/resumed}. */
    record TaskResumed(String containerId) implements TaskEvent {
        public String topic() {
            return "/tasks/resumed";
        }
    }

    /** {@code /tasks/oom}: the container hit its memory limit. */
    record TaskOom(String containerId) implements TaskEvent {
        public String topic() {
            return "/tasks/oom";
        }
    }

    /** A mount as reported in {@link TaskCreate}. */
    record TaskMount(String type, String source, List<String> options) {}
}
