package org.shimmer.runtime.linux.shim.remote;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Leftovers;
import org.shimmer.runtime.linux.testing.NettyLeakDetection;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.spec.Spec;
import reactor.core.publisher.Mono;

/**
 * Local task events reach the runtime that serves the state root's events socket when another runtime (another
 * process: its own resources, registry and exchange) ran the container, and only once when the serving runtime ran
 * it itself.
 */
@ExtendWith(NettyLeakDetection.class)
class LocalEventsForwardingTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "forwarding";

    @TempDir
    Path temp;

    private RuntimeResources servingResources;
    private RuntimeResources runningResources;
    private LinuxRuntime serving;
    private LinuxRuntime running;
    private Path rootfs;

    @BeforeEach
    void startTwoRuntimesOnOneStateRoot() throws Exception {
        RuntimeConfig config = new RuntimeConfig(temp.resolve("state"), temp.resolve("work"));
        servingResources = new RuntimeResources("serving-");
        runningResources = new RuntimeResources("running-");
        serving = new LinuxRuntime(config, servingResources);
        running = new LinuxRuntime(config, runningResources);
        rootfs = Files.createDirectories(temp.resolve("rootfs"));
        BusyboxBundle.writeRootfs(rootfs);
    }

    @AfterEach
    void stopAndCheckNothingIsLeft() throws Exception {
        try {
            Leftovers.assertNoneUnder(temp, NS);
        } finally {
            try {
                runningResources.close();
            } finally {
                servingResources.close();
            }
        }
    }

    @Test
    void aLocalRunElsewhereReachesTheServerAndOneHereArrivesOnce() throws Exception {
        CompletableFuture<List<String>> far = topicsOf("far");
        // Until a later run elsewhere was seen whole: a duplicate of near's would have come by then.
        CompletableFuture<List<String>> near = serving.events()
                .filter(envelope -> envelope.event() instanceof TaskEvent event
                        && List.of("near", "later").contains(event.containerId()))
                .takeUntil(envelope -> envelope.topic().equals("/tasks/delete")
                        && ((TaskEvent) envelope.event()).containerId().equals("later"))
                .filter(envelope -> ((TaskEvent) envelope.event()).containerId().equals("near"))
                .map(Envelope::topic)
                .collectList()
                .toFuture();
        Path socket = ShimEventsServer.socket(temp.resolve("state"));
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        // events() binds the socket before it subscribes, and says nothing when it did.
        while (!Files.exists(socket)) {
            assertThat(System.nanoTime()).as(socket + " bound").isLessThan(deadline);
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
        }

        assertThat(run(running, "far")).isEqualTo(3);
        assertThat(run(serving, "near")).isEqualTo(3);
        assertThat(run(running, "later")).isEqualTo(3);

        assertThat(far.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS))
                .containsExactly("/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete");
        assertThat(near.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("once, not also through the socket")
                .containsExactly("/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete");
        assertThat(servingResources.exchange(temp.resolve("state")).dropped() + runningResources.exchange(temp.resolve("state")).dropped()).isZero();
        for (String id : List.of("far", "near", "later")) {
            BundleInspection left = serving.inspect(NS, id).block(TIMEOUT);
            assertThat(left.present() || left.inUse()).as(id + " left nothing").isFalse();
        }
    }

    @Test
    void aSocketLeftByAKilledServerIsRemovedByTheFirstLocalEventThatFindsItRefusing() throws Exception {
        Path socket = ShimEventsServer.socket(temp.resolve("state"));
        Files.createDirectories(socket.getParent(),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        // What a CLI killed by SIGKILL while it served the socket leaves: the file, and nobody listening on it.
        try (ServerSocketChannel killed = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            killed.bind(UnixDomainSocketAddress.of(socket));
        }
        assertThat(LinuxCalls.probeUnix(socket)).isEqualTo(LinuxCalls.UnixProbe.REFUSED);

        assertThat(run(running, "after-the-kill")).isEqualTo(3);
        // Its forwarder sends what was queued before it stops: the stale socket was tried by then.
        runningResources.close();

        assertThat(socket).as("stale socket").doesNotExist();
        // A runtime serving the state root binds it again as before.
        CompletableFuture<List<String>> served = topicsOf("served");
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (LinuxCalls.probeUnix(socket) != LinuxCalls.UnixProbe.LISTENING) {
            assertThat(System.nanoTime()).as(socket + " bound").isLessThan(deadline);
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
        }
        assertThat(run(serving, "served")).isEqualTo(3);
        assertThat(served.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS))
                .containsExactly("/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete");
    }

    /** The topics the serving runtime sees for {@code id}, up to its delete. */
    private CompletableFuture<List<String>> topicsOf(String id) {
        return serving.events()
                .filter(envelope -> envelope.event() instanceof TaskEvent event && event.containerId().equals(id))
                .takeUntil(envelope -> envelope.topic().equals("/tasks/delete"))
                .map(Envelope::topic)
                .collectList()
                .toFuture();
    }

    private int run(LinuxRuntime runtime, String id) {
        RunRequest request = RunRequest.of(NS, id, Spec.builder().args("/bin/sh", "-c", "exit 3").build(), rootfs)
                .withShim(ShimOpt.local())
                // Its own runc root: the machine's default one is no test's to leave containers in.
                .withRuncOptions(RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString()));
        return Mono.usingWhen(runtime.run(request), Container::exit, Container::release)
                .block(TIMEOUT).status();
    }
}
