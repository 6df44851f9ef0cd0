package org.shimmer.containerd;

import com.google.protobuf.Empty;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import org.shimmer.containerd.task.TaskMarker;
import org.shimmer.containerd.task.TaskService;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.shim.proto.DeleteRequest;
import org.shimmer.runtime.linux.shim.proto.DeleteResponse;
import org.shimmer.runtime.linux.shim.proto.KillRequest;
import org.shimmer.runtime.linux.shim.proto.ResumeRequest;
import org.shimmer.runtime.linux.shim.proto.WaitRequest;
import org.shimmer.runtime.linux.shim.proto.WaitResponse;
import org.shimmer.runtime.linux.ttrpc.CallOptions;
import org.shimmer.runtime.linux.ttrpc.StatusCode;
import org.shimmer.runtime.linux.ttrpc.TtrpcClient;
import org.shimmer.runtime.linux.ttrpc.TtrpcConnection;
import org.shimmer.runtime.linux.ttrpc.TtrpcStatusException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The binary's {@code delete} when the bundle still holds a {@link TaskMarker} and a daemon serves the
 * namespace: containerd lost the task's connection without a completed delete. The task is killed and deleted
 * through the daemon, so the daemon's state stays true, and its {@code DeleteResponse} is what containerd reads.
 * When the daemon does not have the task (or cannot be reached) nothing is done here: the binary then deletes
 * runc's container itself, as it does when no daemon runs. When the daemon has it and fails to end it, the error
 * is the answer: the task stays the daemon's, whole.
 */
final class DeadTaskCleanup {

    private static final Logger log = LoggerFactory.getLogger(DeadTaskCleanup.class);
    /** What the calls to the daemon may take in all: containerd gives the whole command 5 s. */
    private static final Duration BUDGET = Duration.ofMillis(3500);

    private DeadTaskCleanup() {}

    /** The task's delete through the daemon; empty when the daemon could not do it. */
    static Optional<DeleteResponse> run(ShimFlags flags) throws IOException {
        String namespace = flags.namespace();
        String id = flags.id();
        Path bundle = flags.value("bundle").map(Path::of).orElse(Path.of("").toAbsolutePath());
        if (TaskMarker.read(bundle).isEmpty()) {
            return Optional.of(DeleteResponse.getDefaultInstance());
        }
        Optional<DeleteResponse> deleted = throughDaemon(Path.of(flags.required("socket")), namespace, id);
        if (deleted.isPresent()) {
            TaskMarker.remove(bundle);
        }
        return deleted;
    }

    /** Kills and deletes the task through the daemon serving {@code socket}; empty if none serves it. */
    private static Optional<DeleteResponse> throughDaemon(Path socket, String namespace, String id) {
        if (!Files.exists(socket)) {
            return Optional.empty();
        }
        // containerd kills this command after 5 s: every call shares one budget under that.
        long deadline = System.nanoTime() + BUDGET.toNanos();
        TtrpcConnection daemon;
        try (RuntimeResources resources = new RuntimeResources("shimmer-cleanup-")) {
            try {
                daemon = TtrpcClient.create().socket(socket).runOn(resources.loops())
                        .connectTimeout(Duration.ofSeconds(1)).connect().block(Duration.ofSeconds(2));
            } catch (RuntimeException unreachable) {
                log.info("no daemon serves task {} at {} ({}): cleaning up here", id, socket, unreachable.toString());
                return Optional.empty();
            }
            try {
                call(daemon, "Kill", KillRequest.newBuilder().setId(id).setSignal(9).setAll(true).build(),
                        Empty.parser(), namespace, deadline, true);
                // A paused container takes its SIGKILL only once thawed (cgroup v1's freezer).
                call(daemon, "Resume", ResumeRequest.newBuilder().setId(id).build(), Empty.parser(), namespace,
                        deadline, true);
                call(daemon, "Wait", WaitRequest.newBuilder().setId(id).build(), WaitResponse.parser(), namespace,
                        deadline, false);
                return Optional.of(call(daemon, "Delete", DeleteRequest.newBuilder().setId(id).build(),
                        DeleteResponse.parser(), namespace, deadline, false));
            } catch (TtrpcStatusException status) {
                if (status.code() != StatusCode.NOT_FOUND) {
                    throw status;
                }
                // The daemon does not have the task: what is left of it is runc's, for the binary to delete.
                log.info("the daemon at {} does not have task {}: cleaning up here", socket, id);
                return Optional.empty();
            } finally {
                daemon.dispose();
            }
        }
    }

    /**
     * One call within {@code deadline}; a failed one ends the cleanup with its error (the daemon has the task and
     * could not end it: deleting runc's container behind its back would leave it a task it can never drop),
     * unless {@code tolerated} (a kill of what already ended, a resume of what is not paused).
     */
    private static <T> T call(TtrpcConnection daemon, String method, com.google.protobuf.MessageLite request,
            com.google.protobuf.Parser<T> parser, String namespace, long deadline, boolean tolerated) {
        Duration left = Duration.ofNanos(Math.max(deadline - System.nanoTime(), 1_000_000));
        try {
            return daemon.call(TaskService.SERVICE, method, request, parser,
                    CallOptions.defaults().withTimeout(left).withNamespace(namespace)).block(left.plusMillis(200));
        } catch (TtrpcStatusException status) {
            if (tolerated && status.code() != StatusCode.DEADLINE_EXCEEDED) {
                return null;
            }
            throw status;
        }
    }
}
