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
 * When the daemon does not have the task (or does not answer) nothing is done here: the binary then deletes runc's
 * container itself, as it does when no daemon runs.
 */
final class DeadTaskCleanup {

    private static final Logger log = LoggerFactory.getLogger(DeadTaskCleanup.class);
    private static final Duration DAEMON_TIMEOUT = Duration.ofSeconds(3);

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
        try (RuntimeResources resources = new RuntimeResources("shimmer-cleanup-")) {
            TtrpcConnection daemon = TtrpcClient.create().socket(socket).runOn(resources.loops())
                    .connectTimeout(Duration.ofSeconds(2)).connect().block(DAEMON_TIMEOUT);
            try {
                CallOptions options = CallOptions.defaults().withTimeout(DAEMON_TIMEOUT).withNamespace(namespace);
                daemon.call(TaskService.SERVICE, "Kill", KillRequest.newBuilder().setId(id).setSignal(9)
                                .setAll(true).build(), Empty.parser(), options)
                        .onErrorResume(TtrpcStatusException.class, ignored -> reactor.core.publisher.Mono.empty())
                        .block(DAEMON_TIMEOUT);
                daemon.call(TaskService.SERVICE, "Wait", WaitRequest.newBuilder().setId(id).build(),
                        WaitResponse.parser(), options).block(DAEMON_TIMEOUT);
                return Optional.ofNullable(daemon.call(TaskService.SERVICE, "Delete",
                        DeleteRequest.newBuilder().setId(id).build(), DeleteResponse.parser(), options)
                        .block(DAEMON_TIMEOUT));
            } finally {
                daemon.dispose();
            }
        } catch (RuntimeException e) {
            if (e instanceof TtrpcStatusException status && status.code() == StatusCode.NOT_FOUND) {
                log.info("the daemon at {} does not have task {}: cleaning up here", socket, id);
            } else {
                log.info("no daemon serves task {} at {} ({}): cleaning up here", id, socket, e.toString());
            }
            return Optional.empty();
        }
    }
}
