package org.shimmer.containerd;

import com.google.protobuf.Empty;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.shimmer.containerd.task.TaskMarker;
import org.shimmer.containerd.task.TaskService;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.shim.TaskEvents;
import org.shimmer.runtime.linux.shim.local.RootfsMounts;
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
 * The binary's {@code delete} when the bundle still holds a {@link TaskMarker}: containerd lost the task's
 * connection without a completed delete (the daemon died, or the task's connection broke). If a daemon still
 * serves the task, it is killed and deleted through it, so the daemon's state stays true; otherwise runc's container
 * is deleted by force and the rootfs unmounted here. Prints the {@code DeleteResponse} containerd reads: the
 * task's status through a live daemon, 137 otherwise (killed; containerd reports the same for a dead runc shim).
 */
final class DeadTaskCleanup {

    private static final Logger log = LoggerFactory.getLogger(DeadTaskCleanup.class);
    private static final Duration DAEMON_TIMEOUT = Duration.ofSeconds(10);

    private DeadTaskCleanup() {}

    static DeleteResponse run(ShimFlags flags) throws IOException, InterruptedException {
        String namespace = flags.namespace();
        String id = flags.id();
        Path bundle = flags.value("bundle").map(Path::of).orElse(Path.of("").toAbsolutePath());
        Optional<TaskMarker> marker = TaskMarker.read(bundle);
        if (marker.isEmpty()) {
            return DeleteResponse.getDefaultInstance();
        }
        Optional<DeleteResponse> throughDaemon = flags.value("socket").map(Path::of)
                .flatMap(socket -> throughDaemon(socket, namespace, id));
        if (throughDaemon.isPresent()) {
            TaskMarker.remove(bundle);
            return throughDaemon.get();
        }
        int pid = initPid(bundle);
        forceDelete(marker.get(), namespace, id);
        Path work = bundle.resolve("work");
        Path workDir = Files.isSymbolicLink(work) && Files.isDirectory(work) ? work.toRealPath() : bundle;
        RootfsMounts.unmount(bundle.resolve("rootfs"), workDir);
        TaskMarker.remove(bundle);
        return DeleteResponse.newBuilder().setPid(pid).setExitStatus(137)
                .setExitedAt(TaskEvents.timestamp(Instant.now())).build();
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

    private static int initPid(Path bundle) {
        for (Path candidate : List.of(bundle.resolve("work/init.pid"), bundle.resolve("init.pid"))) {
            try {
                return Integer.parseInt(Files.readString(candidate, StandardCharsets.UTF_8).trim());
            } catch (IOException | NumberFormatException ignored) {
                // Not there: the create did not get that far, or the work directory is elsewhere.
            }
        }
        return 0;
    }

    /** {@code runc delete --force}: kills what is left of the container and removes runc's state of it. */
    private static void forceDelete(TaskMarker marker, String namespace, String id) throws IOException,
            InterruptedException {
        List<String> command = new ArrayList<>(List.of(marker.binaryName(), "--root",
                Path.of(marker.runtimeRoot()).resolve(namespace).toString(), "delete", "--force", id));
        Process runc = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        String output = new String(runc.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        if (!runc.waitFor(30, TimeUnit.SECONDS)) {
            runc.destroyForcibly();
            throw new IOException(String.join(" ", command) + " did not end within 30 s");
        }
        if (runc.exitValue() != 0 && !output.contains("does not exist")) {
            throw new IOException(String.join(" ", command) + " failed (" + runc.exitValue() + "): " + output);
        }
    }
}
