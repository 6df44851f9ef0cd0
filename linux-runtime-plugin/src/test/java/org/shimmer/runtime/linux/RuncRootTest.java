package org.shimmer.runtime.linux;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.NettyLeakDetection;
import org.shimmer.runtime.linux.testing.Zombies;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 9, finding 10: runc's root defaults to one per state root, so two hosts with different state roots never
 * see (or collide with) each other's runc containers, even with the same namespace and id.
 */
@ExtendWith(NettyLeakDetection.class)
class RuncRootTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "runc-root-test";
    /** One id for both roots; unique to this run: without a cgroupsPath runc names the cgroup after it. */
    private static final String ID = "same-id-" + UUID.randomUUID().toString().substring(0, 8);

    @TempDir
    Path temp;

    private final RuntimeResources resources = new RuntimeResources("runc-root-test-");

    @AfterEach
    void tearDown() throws Exception {
        resources.close();
        assertThat(Zombies.awaitNone(TIMEOUT)).as("zombie children of the JVM").isEmpty();
    }

    @Test
    void twoStateRootsRunTheSameIdSideBySideEachUnderItsOwnRuncRoot() throws Exception {
        Path image = Files.createDirectories(temp.resolve("image"));
        BusyboxBundle.writeRootfs(image);
        byte[] spec = BusyboxBundle.spec(Files.createDirectories(temp.resolve("spec")), "/bin/sleep", "60");
        List<Path> stateRoots = List.of(temp.resolve("host-a/state"), temp.resolve("host-b/state"));
        List<ShimClient> shims = new ArrayList<>();
        List<Bundle> bundles = new ArrayList<>();
        List<LinuxRuntime> runtimes = new ArrayList<>();
        try {
            for (Path stateRoot : stateRoots) {
                LinuxRuntime runtime = new LinuxRuntime(
                        new RuntimeConfig(stateRoot, stateRoot.resolveSibling("work")), resources);
                runtimes.add(runtime);
                Bundle bundle = runtime.create(NS, ID, spec).block(TIMEOUT);
                bundles.add(bundle);
                // No runtime root given: the default must not be one directory shared by both hosts.
                ShimClient shim = bundle.newShimClient(ShimOpt.local(), RuncOptions.defaults())
                        .block(TIMEOUT);
                shims.add(shim);
                shim.create(new CreateOptions(List.of(Mount.readOnlyBind(image)), Stdio.none())).block(TIMEOUT);
                shim.start().block(TIMEOUT);
            }

            for (int i = 0; i < stateRoots.size(); i++) {
                assertThat(shims.get(i).state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.RUNNING);
                assertThat(stateRoots.get(i).resolve(RuncOptions.RUNTIME_ROOT_DIR).resolve(NS).resolve(ID)
                        .resolve("state.json")).as("runc state of host %d", i).isRegularFile();
            }
            assertThat(shims.get(0).state().block(TIMEOUT).pid())
                    .isNotEqualTo(shims.get(1).state().block(TIMEOUT).pid());

            // Events are each state root's own: host b's exit never reaches host a's client or runtime stream,
            // which took it for their container's (one exchange served every state root of the resources).
            List<Envelope> seenByClientA = new CopyOnWriteArrayList<>();
            List<Envelope> seenByRuntimeA = new CopyOnWriteArrayList<>();
            Disposable clientA = shims.get(0).events().subscribe(seenByClientA::add);
            Disposable runtimeA = runtimes.get(0).events().subscribe(seenByRuntimeA::add);
            try {
                // Markers published into a's exchange: it delivers in order, so b's exit, had it reached a's
                // exchange, would be seen before the marker that follows it. The first shows both streams live.
                Runnable marker = () -> resources.exchange(stateRoots.get(0))
                        .publish(NS, "/tasks/paused", new TaskEvent.TaskPaused(ID)).block(TIMEOUT);
                Mono.fromRunnable(marker).then(Mono.delay(Duration.ofMillis(20))).repeat()
                        .takeUntil(tick -> !seenByClientA.isEmpty() && !seenByRuntimeA.isEmpty()).blockLast(TIMEOUT);
                seenByClientA.clear();
                seenByRuntimeA.clear();
                shims.get(1).kill(9, false).block(TIMEOUT);
                assertThat(shims.get(1).awaitExit().block(TIMEOUT).status()).isEqualTo(137);
                // The last marker is told apart: a late first one must not end the wait.
                resources.exchange(stateRoots.get(0)).publish(NS, "/tasks/resumed", new TaskEvent.TaskResumed(ID))
                        .block(TIMEOUT);
                Predicate<List<Envelope>> resumed = seen -> seen.stream()
                        .anyMatch(envelope -> envelope.event() instanceof TaskEvent.TaskResumed);
                Mono.delay(Duration.ofMillis(5)).repeat()
                        .takeUntil(tick -> resumed.test(seenByClientA) && resumed.test(seenByRuntimeA))
                        .blockLast(TIMEOUT);
                for (List<Envelope> seen : List.of(seenByClientA, seenByRuntimeA)) {
                    assertThat(seen).allSatisfy(envelope -> assertThat(envelope.event())
                            .isInstanceOfAny(TaskEvent.TaskPaused.class, TaskEvent.TaskResumed.class));
                }
                seenByClientA.clear();
                assertThat(shims.get(0).state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.RUNNING);
                shims.get(0).kill(9, false).block(TIMEOUT);
                assertThat(shims.get(0).awaitExit().block(TIMEOUT).status()).isEqualTo(137);
                Mono.delay(Duration.ofMillis(10)).repeat().takeUntil(tick -> !seenByClientA.isEmpty())
                        .blockLast(TIMEOUT);
                assertThat(seenByClientA).singleElement().satisfies(envelope -> assertThat(envelope.event())
                        .isInstanceOf(TaskEvent.TaskExit.class));
            } finally {
                clientA.dispose();
                runtimeA.dispose();
            }
        } finally {
            for (ShimClient shim : shims) {
                shim.kill(9, true).onErrorComplete().block(TIMEOUT);
                shim.awaitExit().block(TIMEOUT);
                shim.delete().block(TIMEOUT);
                shim.shutdown().block(TIMEOUT);
            }
            for (Bundle bundle : bundles) {
                bundle.delete().block(TIMEOUT);
            }
        }
        for (Path stateRoot : stateRoots) {
            assertThat(stateRoot.resolve(RuncOptions.RUNTIME_ROOT_DIR).resolve(NS).resolve(ID)).doesNotExist();
        }
    }
}
