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

/** The remote shim through the runtime API: real containerd-shim-runc-v2, real runc, busybox bundles. */
@ExtendWith(NettyLeakDetection.class)
class RemoteShimTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final Path SHIM = Path.of("containerd-shim-runc-v2");
    private static final String NS = "remote-test";

    @TempDir
    Path temp;

    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private RuncOptions runc;
    private final List<Integer> shimPids = new CopyOnWriteArrayList<>();
    private final List<Bundle> bundles = new CopyOnWriteArrayList<>();
    private final List<Path> shimSockets = new CopyOnWriteArrayList<>();
    private final AtomicInteger exits = new AtomicInteger();

    @BeforeEach
    void setUp() {
        resources = new RuntimeResources("remote-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
        runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
    }

    @AfterEach
    void tearDown() throws Exception {
        // The suite checks that nothing is left: no FIFO, no bundle, no shim socket, no shim, no runc container.
        for (Bundle bundle : bundles) {
            assertNoFifos(bundle);
            runtime.delete(bundle.namespace(), bundle.id()).block(TIMEOUT);
        }
        for (Path root : List.of(temp.resolve("state").resolve(NS), temp.resolve("work").resolve(NS))) {
            if (Files.isDirectory(root)) {
                try (Stream<Path> left = Files.list(root)) {
                    assertThat(left).as("bundles left in " + root).isEmpty();
                }
            }
        }
        resources.close();
        for (Path socket : shimSockets) {
            assertThat(socket).as("shim socket left").doesNotExist();
        }
        for (int pid : shimPids) {
            assertThat(Processes.awaitGone(pid, Duration.ofSeconds(10))).as("shim %d is gone", pid).isTrue();
        }
        // No runc container survives a test: every namespace root is empty.
        Path runcRoot = temp.resolve("runc").resolve(NS);
        if (Files.isDirectory(runcRoot)) {
            try (Stream<Path> containers = Files.list(runcRoot)) {
                assertThat(containers).as("runc containers left").isEmpty();
            }
        }
    }

    private ShimOpt remote() {
        return ShimOpt.remote(SHIM, temp.resolve("daemon.sock").toString(), null, false,
                (ShimExit exit) -> exits.incrementAndGet());
    }

    private Bundle bundle(String... args) throws Exception {
        String id = "c-" + UUID.randomUUID().toString().substring(0, 8);
        Bundle bundle = runtime.create(NS, id, BusyboxBundle.spec(Files.createDirectories(temp.resolve("specs")),
                args)).block(TIMEOUT);
        BusyboxBundle.writeRootfs(bundle.rootfs());
        bundles.add(bundle);
        return bundle;
    }

    private ShimClient shim(Bundle bundle) throws Exception {
        ShimClient client = bundle.newShimClient(remote(), runc).block(TIMEOUT);
        shimPids.add(((RemoteShimClient) client).shimPid());
        shimSockets.add(Path.of(ShimRecord.read(bundle.workDir()).orElseThrow().socket()));
        return client;
    }

    private static String text(Flux<byte[]> chunks) {
        return chunks.map(bytes -> new String(bytes, UTF_8)).reduce("", String::concat).block(TIMEOUT);
    }

    @Test
    void echoThroughAStreamWithEventsInOrder() throws Exception {
        Bundle bundle = bundle("/bin/echo", "hello through a stream");
        ShimClient shim = shim(bundle);
        List<Envelope> events = new CopyOnWriteArrayList<>();
        Disposable listening = shim.events().subscribe(events::add);

        ProcessIo io = shim.create(CreateOptions.of(Stdio.streams(null))).block(TIMEOUT);
        Mono<String> output = Mono.fromCallable(() -> text(io.stdout())).subscribeOn(resources.io()).cache();
        output.subscribe();
        int pid = shim.start().block(TIMEOUT);
        ExitStatus exit = shim.awaitExit().block(TIMEOUT);
        ExitStatus deleted = shim.delete().block(TIMEOUT);

        assertThat(pid).isEqualTo(io.pid()).isPositive();
        assertThat(exit.status()).isZero();
        assertThat(deleted.status()).isZero();
        assertThat(deleted.exitedAt()).isEqualTo(exit.exitedAt());
        assertThat(output.block(TIMEOUT)).isEqualTo("hello through a stream\n");
        awaitTopics(events, "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete");
        assertThat(events.stream().map(Envelope::topic).distinct().toList())
                .containsExactly("/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete");
        assertThat(events).allSatisfy(e -> assertThat(e.namespace()).isEqualTo(NS));
        listening.dispose();
        shim.shutdown().block(TIMEOUT);
        assertThat(exits).hasValue(0);
        assertNoFifos(bundle);
    }

    @Test
    void echoThroughAFile() throws Exception {
        Bundle bundle = bundle("/bin/echo", "hello through a file");
        ShimClient shim = shim(bundle);
        Path out = temp.resolve("out/echo.txt");

        shim.create(CreateOptions.of(Stdio.files(out, out))).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        shim.awaitExit().block(TIMEOUT);
        shim.delete().block(TIMEOUT);

        assertThat(out).hasContent("hello through a file");
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void exitStatusSevenEverywhere() throws Exception {
        Bundle bundle = bundle("/bin/sh", "-c", "exit 7");
        ShimClient shim = shim(bundle);
        Mono<TaskEvent.TaskExit> exitEvent = shim.events()
                .map(Envelope::event).ofType(TaskEvent.TaskExit.class).next().cache();
        exitEvent.subscribe();

        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        shim.start().block(TIMEOUT);

        assertThat(shim.awaitExit().block(TIMEOUT).status()).isEqualTo(7);
        assertThat(exitEvent.block(TIMEOUT).exitStatus()).isEqualTo(7);
        assertThat(shim.delete().block(TIMEOUT).status()).isEqualTo(7);
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void sleepKilledWithSigkillGives137() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient shim = shim(bundle);
        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        assertThat(shim.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.RUNNING);

        shim.kill(9, false).block(TIMEOUT);

        assertThat(shim.awaitExit().block(TIMEOUT).status()).isEqualTo(137);
        assertThat(shim.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.STOPPED);
        assertThat(shim.delete().block(TIMEOUT).status()).isEqualTo(137);
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void execIntoARunningContainer() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient shim = shim(bundle);
        List<Envelope> events = new CopyOnWriteArrayList<>();
        Disposable listening = shim.events().subscribe(events::add);
        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        byte[] process = """
                {"args": ["/bin/sh", "-c", "echo exec says hi; exit 5"], "cwd": "/", "env": ["PATH=/bin"],
                 "user": {"uid": 0, "gid": 0}}
                """.getBytes(UTF_8);

        ProcessIo io = shim.exec("e1", process, Stdio.streams(null)).block(TIMEOUT);
        Mono<String> output = Mono.fromCallable(() -> text(io.stdout())).subscribeOn(resources.io()).cache();
        output.subscribe();
        int execPid = shim.start("e1").block(TIMEOUT);
        ExitStatus execExit = shim.awaitExit("e1").block(TIMEOUT);
        shim.delete("e1").block(TIMEOUT);

        assertThat(execPid).isPositive();
        assertThat(execExit.status()).isEqualTo(5);
        assertThat(output.block(TIMEOUT)).isEqualTo("exec says hi\n");
        awaitTopics(events, "/tasks/exec-added", "/tasks/exec-started", "/tasks/exit");
        assertThat(events).anySatisfy(e -> assertThat(e.event()).isEqualTo(new TaskEvent.TaskExecAdded(bundle.id(),
                "e1")));
        assertThat(events).anySatisfy(e -> assertThat(e.event()).isEqualTo(new TaskEvent.TaskExecStarted(bundle.id(),
                "e1", execPid)));
        assertThat(events).anySatisfy(e -> assertThat(e.event()).isInstanceOfSatisfying(TaskEvent.TaskExit.class,
                exit -> assertThat(exit.id()).isEqualTo("e1")));
        listening.dispose();
        stop(shim);
    }

    @Test
    void pauseResumePidsAndStats() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient shim = shim(bundle);
        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        int pid = shim.start().block(TIMEOUT);

        shim.pause().block(TIMEOUT);
        assertThat(shim.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.PAUSED);
        shim.resume().block(TIMEOUT);
        assertThat(shim.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.RUNNING);
        assertThat(shim.pids().map(p -> p.pid()).collectList().block(TIMEOUT)).contains(pid);
        var stats = shim.stats().block(TIMEOUT);
        assertThat(stats.typeUrl()).startsWith("io.containerd.cgroups.");
        assertThat(stats.value()).isNotEmpty();
        stop(shim);
    }

    @Test
    void stdinStreamsIntoTheProcess() throws Exception {
        Bundle bundle = bundle("/bin/cat");
        ShimClient shim = shim(bundle);
        Flux<byte[]> input = Flux.just("hello ", "from ", "stdin").map(text -> text.getBytes(UTF_8));

        ProcessIo io = shim.create(CreateOptions.of(Stdio.streams(input))).block(TIMEOUT);
        Mono<String> output = Mono.fromCallable(() -> text(io.stdout())).subscribeOn(resources.io()).cache();
        output.subscribe();
        shim.start().block(TIMEOUT);

        assertThat(shim.awaitExit().block(TIMEOUT).status()).isZero();
        shim.delete().block(TIMEOUT);
        assertThat(output.block(TIMEOUT)).isEqualTo("hello from stdin");
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void closeIoEndsAProcessReadingStdin() throws Exception {
        Bundle bundle = bundle("/bin/cat");
        ShimClient shim = shim(bundle);
        shim.create(CreateOptions.of(Stdio.streams(Flux.never()))).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        assertThat(shim.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.RUNNING);

        shim.closeIo("").block(TIMEOUT);

        assertThat(shim.awaitExit().block(TIMEOUT).status()).isZero();
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void updateChangesTheContainersCgroup() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient shim = shim(bundle);
        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        int pid = shim.start().block(TIMEOUT);

        shim.update("{\"pids\": {\"limit\": 42}}".getBytes(UTF_8)).block(TIMEOUT);

        assertThat(pidsLimit(pid)).isEqualTo("42");
        stop(shim);
    }

    @Test
    void checkpointReportsWhyItCannot() throws Exception {
        // criu cannot run in this sandbox (its vdso probe fails), so the shim's refusal must reach us intact.
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient shim = shim(bundle);
        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        shim.start().block(TIMEOUT);

        StepVerifier.create(shim.checkpoint(temp.resolve("checkpoint"), false))
                .expectErrorSatisfies(e -> assertThat(e)
                        .isInstanceOf(ShimException.class)
                        .hasMessageStartingWith("checkpoint task " + NS + "/" + bundle.id() + ": "))
                .verify(TIMEOUT);
        assertThat(shim.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.RUNNING);
        stop(shim);
    }

    private static String pidsLimit(int pid) throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc", Integer.toString(pid), "cgroup"))) {
            String[] parts = line.split(":", 3);
            if (parts[1].equals("pids") || (parts[0].equals("0") && parts[1].isEmpty()
                    && !Files.isDirectory(Path.of("/sys/fs/cgroup/pids")))) {
                Path base = parts[1].equals("pids") ? Path.of("/sys/fs/cgroup/pids") : Path.of("/sys/fs/cgroup");
                return Files.readString(base.resolve(parts[2].substring(1)).resolve("pids.max")).strip();
            }
        }
        throw new AssertionError("no pids cgroup for " + pid);
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
        awaitTrue(() -> exits.get() == 1);
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
        resources = new RuntimeResources("remote-test-2-");
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

    @Test
    void aSpecRuncRejectsIsAClearErrorAndLeavesNoContainer() throws Exception {
        Bundle bundle = bundle("/bin/true");
        String spec = Files.readString(bundle.configFile());
        String rejected = spec.replace("\"cwd\" : \"/\"", "\"cwd\" : \"relative/dir\"");
        assertThat(rejected).isNotEqualTo(spec);
        Files.writeString(bundle.configFile(), rejected);
        ShimClient shim = shim(bundle);

        StepVerifier.create(shim.create(CreateOptions.of(Stdio.streams(null))))
                .expectErrorSatisfies(e -> assertThat(e)
                        .isInstanceOf(ShimException.class).hasMessageContaining("create task"))
                .verify(TIMEOUT);

        shim.shutdown().block(TIMEOUT);
        assertBundleIntact(bundle);
        assertNoFifos(bundle);
    }

    @Test
    void fiftyContainersAtOnce() throws Exception {
        List<Bundle> bundles = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            bundles.add(bundle("/bin/sh", "-c", "echo $$"));
        }

        List<Integer> statuses = Flux.fromIterable(bundles)
                .flatMap(bundle -> bundle.newShimClient(remote(), runc)
                        .doOnNext(shim -> shimPids.add(((RemoteShimClient) shim).shimPid()))
                        .flatMap(shim -> shim.create(CreateOptions.of(Stdio.none()))
                                .then(shim.start())
                                .then(shim.awaitExit())
                                .then(shim.delete())
                                .flatMap(exit -> shim.shutdown().thenReturn(exit.status()))), 50)
                .collectList()
                .block(Duration.ofMinutes(3));

        assertThat(statuses).hasSize(50).containsOnly(0);
    }

    private void stop(ShimClient shim) {
        shim.kill(9, true).block(TIMEOUT);
        shim.awaitExit().block(TIMEOUT);
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
    }

    private static void assertBundleIntact(Bundle bundle) {
        assertThat(bundle.configFile()).isRegularFile();
        assertThat(bundle.rootfs().resolve("bin/busybox")).isRegularFile();
    }

    private static void assertNoFifos(Bundle bundle) throws Exception {
        Path io = bundle.workDir().resolve("io");
        if (Files.isDirectory(io)) {
            try (Stream<Path> left = Files.list(io)) {
                assertThat(left).as("FIFOs left in " + io).isEmpty();
            }
        }
    }

    private static void awaitTopics(List<Envelope> events, String... topics) throws InterruptedException {
        awaitTrue(() -> events.stream().map(Envelope::topic).toList().containsAll(List.of(topics)));
    }

    private static void awaitTrue(java.util.function.BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!condition.getAsBoolean() && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertThat(condition.getAsBoolean()).as("condition within " + TIMEOUT).isTrue();
    }
}
