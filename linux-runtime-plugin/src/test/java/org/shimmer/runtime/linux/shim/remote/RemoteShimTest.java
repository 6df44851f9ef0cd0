package org.shimmer.runtime.linux.shim.remote;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.shim.ShimContractTest;
import org.shimmer.runtime.linux.RuntimeResources;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.NettyLeakDetection;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimException;
import org.shimmer.runtime.shim.ShimExit;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import reactor.core.Disposable;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.test.StepVerifier;

/** The contract, and what only the remote shim does, against the real containerd-shim-runc-v2. */
class RemoteShimTest extends ShimContractTest {

    private static final Path SHIM = Path.of("containerd-shim-runc-v2");

    private final List<Integer> shimPids = new CopyOnWriteArrayList<>();
    private final List<Path> shimSockets = new CopyOnWriteArrayList<>();
    private final AtomicInteger exits = new AtomicInteger();
    private final java.util.concurrent.CountDownLatch exitHandled = new java.util.concurrent.CountDownLatch(1);

    @AfterEach
    void checkNoShimIsLeft() throws Exception {
        List<Integer> alive = new ArrayList<>();
        for (int pid : shimPids) {
            if (!Processes.awaitGone(pid, Duration.ofSeconds(10))) {
                alive.add(pid);
                // A failed test must not leave a shim (and its container) running on the machine.
                ProcessHandle.of(pid).ifPresent(shim -> {
                    shim.descendants().forEach(ProcessHandle::destroyForcibly);
                    shim.destroyForcibly();
                });
            }
        }
        assertThat(alive).as("shims still running after the test").isEmpty();
        for (Path socket : shimSockets) {
            assertThat(socket).as("shim socket left").doesNotExist();
        }
    }

    @Override
    protected String expectedStatsType() {
        return "io.containerd.cgroups.";
    }

    private ShimOpt remote() {
        return ShimOpt.remote(SHIM, temp.resolve("daemon.sock").toString(), null, false,
                (ShimExit exit) -> {
                    exits.incrementAndGet();
                    exitHandled.countDown();
                });
    }

    @Override
    protected Mono<ShimClient> newShim(Bundle bundle) {
        return bundle.newShimClient(remote(), runc).doOnNext(client -> {
            shimPids.add(((RemoteShimClient) client).shimPid());
            try {
                shimSockets.add(Path.of(ShimRecord.read(bundle.workDir()).orElseThrow().socket()));
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    @Test
    void killingTheShimRunsTheExitHandlerOnceAndLeavesNothing() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient shim = shim(bundle);
        Mono<TaskEvent.TaskExit> exitEvent = shim.events()
                .map(Envelope::event).ofType(TaskEvent.TaskExit.class).next().cache();
        exitEvent.subscribe();
        shim.create(CreateOptions.of(Stdio.streams(null))).block(TIMEOUT);
        int pid = shim.start().block(TIMEOUT);
        int shimPid = ((RemoteShimClient) shim).shimPid();
        Path socket = Path.of(ShimRecord.read(bundle.workDir()).orElseThrow().socket());

        new ProcessBuilder("kill", "-9", Integer.toString(shimPid)).start().waitFor();

        TaskEvent.TaskExit exit = exitEvent.block(TIMEOUT);
        assertThat(exit.exitStatus()).isEqualTo(137);
        assertThat(exit.pid()).isEqualTo(pid);
        assertThat(exitHandled.await(TIMEOUT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS)).isTrue();
        assertThat(Processes.awaitGone(pid, TIMEOUT)).isTrue();
        assertThat(socket).doesNotExist();
        assertThat(exits).hasValue(1);
        assertNoFifos(bundle);
        StepVerifier.create(shim.state()).expectError(ShimException.class).verify(TIMEOUT);
    }

    @Test
    void reattachesAfterAHostRestartAndSeesTheExit() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient first = shim(bundle);
        first.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        int pid = first.start().block(TIMEOUT);

        // The host goes away: every client object and the runtime's resources; the shim and container stay.
        first.close().block(TIMEOUT);
        resources.close();
        resources = new RuntimeResources("shim-test-2-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);

        Bundle loaded = runtime.load(NS, bundle.id()).block(TIMEOUT);
        ShimClient again = loaded.newShimClient(ShimOpt.connect(), runc).block(TIMEOUT);
        Mono<TaskEvent.TaskExit> exitEvent = again.events()
                .map(Envelope::event).ofType(TaskEvent.TaskExit.class).next().cache();
        exitEvent.subscribe();

        TaskState state = again.state().block(TIMEOUT);
        assertThat(state.status()).isEqualTo(TaskState.Status.RUNNING);
        assertThat(state.pid()).isEqualTo(pid);
        again.kill(9, false).block(TIMEOUT);
        assertThat(again.awaitExit().block(TIMEOUT).status()).isEqualTo(137);
        assertThat(exitEvent.block(TIMEOUT).exitStatus()).isEqualTo(137);
        again.delete().block(TIMEOUT);
        again.shutdown().block(TIMEOUT);
    }

    @Test
    void connectToADeadShimCleansUpAtOnce() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient shim = shim(bundle);
        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        int pid = shim.start().block(TIMEOUT);
        shim.close().block(TIMEOUT);
        new ProcessBuilder("kill", "-9", Integer.toString(((RemoteShimClient) shim).shimPid())).start().waitFor();
        Processes.awaitGone(((RemoteShimClient) shim).shimPid(), TIMEOUT);

        long started = System.nanoTime();
        StepVerifier.create(bundle.newShimClient(ShimOpt.connect(), runc))
                .expectErrorSatisfies(e -> assertThat(e)
                        .isInstanceOf(ShimException.class).hasMessageContaining("is not running"))
                .verify(TIMEOUT);

        assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(RemoteShims.DIAL_TIMEOUT.plusSeconds(8));
        assertThat(Processes.awaitGone(pid, TIMEOUT)).isTrue();
    }

    @Test
    void anotherProcessServingTheEventsDoesNotStopShimsFromStarting() throws Exception {
        // A second host on the same state root (here: other resources in this JVM) listens for events first.
        RuntimeResources otherResources = new RuntimeResources("other-host-");
        org.shimmer.runtime.events.InMemoryEventExchange otherEvents =
                new org.shimmer.runtime.events.InMemoryEventExchange();
        try {
            LinuxRuntime other = new LinuxRuntime(config().withEvents(otherEvents), otherResources);
            EventRecorder seenByOther = new EventRecorder(other.events());
            awaitTrue(() -> Files.exists(temp.resolve("state/.shimmer/events.sock")));

            Bundle bundle = bundle("/bin/true");
            ShimClient shim = shim(bundle);
            shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
            shim.start().block(TIMEOUT);
            assertThat(shim.awaitExit().block(TIMEOUT).status()).isZero();
            shim.delete().block(TIMEOUT);
            shim.shutdown().block(TIMEOUT);

            seenByOther.awaitTopics("/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete");
            StepVerifier.create(runtime.events())
                    .expectErrorSatisfies(e -> assertThat(e)
                            .isInstanceOf(ShimException.class)
                            .hasMessageContaining("another process already receives the shim events"))
                    .verify(TIMEOUT);
            seenByOther.close();
        } finally {
            otherResources.close();
            otherEvents.dispose();
        }
    }

    @Test
    void aShimBinaryThatDoesNotExistIsAClearError() throws Exception {
        Bundle bundle = bundle("/bin/true");

        StepVerifier.create(bundle.newShimClient(ShimOpt.remote(temp.resolve("no-such-shim"), "x", null, false,
                        null), runc))
                .expectErrorSatisfies(e -> assertThat(e)
                        .isInstanceOf(ShimException.class)
                        .hasMessageContaining("cannot run shim binary " + temp.resolve("no-such-shim")))
                .verify(TIMEOUT);
        assertBundleIntact(bundle);
    }

    @Test
    void aShimThatExitsAtOnceIsAClearError() throws Exception {
        Bundle bundle = bundle("/bin/true");

        StepVerifier.create(bundle.newShimClient(ShimOpt.remote(Path.of("/bin/true"), "x", null, false, null),
                        runc))
                .expectErrorSatisfies(e -> assertThat(e)
                        .isInstanceOf(ShimException.class).hasMessageContaining("exited without printing its address"))
                .verify(TIMEOUT);
        assertBundleIntact(bundle);
    }

}
