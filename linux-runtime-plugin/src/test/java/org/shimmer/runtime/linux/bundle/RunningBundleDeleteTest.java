package org.shimmer.runtime.linux.bundle;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.NettyLeakDetection;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import reactor.test.StepVerifier;

/**
 * Issue 9 findings 1 and 2: deleting the bundle of a running container whose rootfs is a bind of the user's own
 * directory is refused before anything changes; the user's files stay byte for byte, the container stays fully
 * controllable, and the normal cleanup afterwards leaves nothing.
 */
@ExtendWith(NettyLeakDetection.class)
class RunningBundleDeleteTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "delete-test";

    @TempDir
    Path temp;

    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private RuncOptions runc;
    /** Stops a container a failed test left running, so it never outlives the test. */
    private Runnable stopLeftovers = () -> {};

    @BeforeEach
    void startRuntime() {
        resources = new RuntimeResources("delete-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
        runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
    }

    @AfterEach
    void checkNothingIsLeft() throws Exception {
        stopLeftovers.run();
        try {
            TestTrees.assertNoMountsUnder(temp);
        } finally {
            TestTrees.unmountAllUnder(temp);
            resources.close();
        }
        TestTrees.assertNoDescriptorsUnder(temp);
        Processes.awaitNoneMentioning(temp.toString(), TIMEOUT);
        for (Path root : List.of(temp.resolve("state").resolve(NS), temp.resolve("work").resolve(NS),
                temp.resolve("runc").resolve(NS))) {
            if (Files.isDirectory(root)) {
                try (Stream<Path> left = Files.list(root)) {
                    assertThat(left).as("left in " + root).isEmpty();
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} shim, rootfs bind {1}")
    @CsvSource({"local, rw", "local, ro", "remote, rw", "remote, ro"})
    void deleteOfARunningBindMountedBundleIsRefusedAndTheUserTreeSurvives(String kind, String mode)
            throws Exception {
        Path userDir = Files.createDirectories(temp.resolve("user image"));
        BusyboxBundle.writeRootfs(userDir);
        TestTrees.userTree(userDir.resolve("data"));
        Map<String, String> before = TestTrees.fingerprint(userDir);
        // A unique id: runc names the container's cgroup after it, and other suites may run at the same time.
        String id = "c-" + UUID.randomUUID().toString().substring(0, 8);
        Bundle bundle = runtime.create(NS, id, BusyboxBundle.spec(Files.createDirectories(temp.resolve("specs")),
                "/bin/sh", "-c", "echo ready; read line; echo got $line; exec sleep 60")).block(TIMEOUT);
        ShimClient shim = bundle.newShimClient(shimOpt(kind), runc).block(TIMEOUT);
        Sinks.Many<byte[]> stdin = Sinks.many().unicast().onBackpressureBuffer();
        ProcessIo io = shim.create(new CreateOptions(
                List.of(new Mount("bind", userDir.toString(), List.of("rbind", mode))),
                Stdio.streams(stdin.asFlux()))).block(TIMEOUT);
        Mono<String> output = io.stdout().map(bytes -> new String(bytes, UTF_8)).reduce("", String::concat)
                .subscribeOn(resources.io()).cache();
        output.subscribe();
        int pid = shim.start().block(TIMEOUT);
        stopLeftovers = () -> {
            if (Processes.isRunning(pid)) {
                ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
                shim.awaitExit().then(shim.delete()).then(shim.shutdown()).onErrorComplete().block(TIMEOUT);
                runtime.delete(NS, id).onErrorComplete().block(TIMEOUT);
            }
        };
        List<Path> hostMounts = TestTrees.mountsUnder(bundle.path());
        System.out.println(kind + " shim, " + mode + ": mounts under the bundle in the host namespace: "
                + hostMounts);
        assertThat(names(bundle.workDir())).as("FIFOs of a running container").isNotEmpty();
        List<String> bundleEntries = names(bundle.path());
        List<String> workEntries = names(bundle.workDir());

        StepVerifier.create(bundle.delete())
                .expectErrorSatisfies(e -> assertThat(e)
                        .isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining("bundle " + NS + "/" + id + " is in use")
                        .hasMessageContaining(bundle.rootfs().toString())
                        .hasMessageContaining("nothing was deleted"))
                .verify(TIMEOUT);

        assertThat(TestTrees.fingerprint(userDir)).isEqualTo(before);
        assertThat(names(bundle.path())).isEqualTo(bundleEntries);
        assertThat(names(bundle.workDir())).isEqualTo(workEntries);
        assertThat(names(bundle.path().getParent())).containsExactly(id);
        assertThat(runtime.load(NS, id).block(TIMEOUT)).isEqualTo(bundle);
        TaskState state = shim.state().block(TIMEOUT);
        assertThat(state.status()).isEqualTo(TaskState.Status.RUNNING);
        assertThat(state.pid()).isEqualTo(pid);

        // Its stdio still works: stdin reaches it, and its output arrives.
        stdin.tryEmitNext("after the refused delete\n".getBytes(UTF_8));
        stdin.tryEmitComplete();
        awaitExec(pid);
        shim.kill(9, false).block(TIMEOUT);
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isEqualTo(137);
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
        StepVerifier.create(bundle.delete()).verifyComplete();

        assertThat(output.block(TIMEOUT)).isEqualTo("ready\ngot after the refused delete\n");
        assertThat(Processes.awaitGone(pid, TIMEOUT)).isTrue();
        assertThat(TestTrees.fingerprint(userDir)).isEqualTo(before);
        assertThat(bundle.path()).doesNotExist();
        assertThat(bundle.workDir()).doesNotExist();
    }

    private ShimOpt shimOpt(String kind) {
        return kind.equals("local")
                ? ShimOpt.local()
                : ShimOpt.remote(Path.of("containerd-shim-runc-v2"), temp.resolve("daemon.sock").toString(), null,
                        false, exit -> {});
    }

    /** Waits until the shell replaced itself by sleep: it has then read stdin and written its answer. */
    private static void awaitExec(int pid) throws Exception {
        Path comm = Path.of("/proc", Integer.toString(pid), "comm");
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!Files.readString(comm).strip().equals("sleep")) {
            assertThat(System.nanoTime()).as("the container read its stdin").isLessThan(deadline);
            Thread.sleep(10);
        }
    }

    private static List<String> names(Path dir) throws Exception {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
