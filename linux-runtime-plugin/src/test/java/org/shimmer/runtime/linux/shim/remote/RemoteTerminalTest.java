package org.shimmer.runtime.linux.shim.remote;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.sys.MountTable;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.NettyLeakDetection;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.linux.testing.TerminalScreen;
import org.shimmer.runtime.linux.testing.Zombies;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimExit;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TerminalSize;
import org.shimmer.runtime.spec.Spec;
import reactor.core.Disposable;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.test.StepVerifier;

/**
 * Terminals through the real {@code containerd-shim-runc-v2}: an interactive busybox {@code sh} on a pty, for init
 * and for an exec, typed into and read as one stream; resizes and their refusals; the spec and the stdio agreeing;
 * and the ways a session can end early (a cancel, an exit under a resize, the shim killed). Each test ends with no
 * FIFO, fd, process, shim, mount or runc container left.
 */
@ExtendWith(NettyLeakDetection.class)
class RemoteTerminalTest {

    /** The warm-up's id, unique to this run: its raw spec has no cgroupsPath, so runc names the cgroup after it. */
    private static final String WARM_ID = "warm-" + UUID.randomUUID().toString().substring(0, 8);

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "remote-tty-test";
    private static final Path SHIM = Path.of("containerd-shim-runc-v2");
    private static final ObjectMapper JSON = new ObjectMapper();
    /** What an interactive busybox sh prints before it reads a command (root's prompt). */
    private static final String PROMPT = "# ";

    @TempDir
    Path temp;

    private Map<Integer, String> fdsBefore;
    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private RuncOptions runc;
    private final List<Bundle> bundles = new CopyOnWriteArrayList<>();
    private final List<TerminalScreen> screens = new CopyOnWriteArrayList<>();

    @BeforeAll
    static void warmUp(@TempDir Path warm) throws Exception {
        // The first remote shim of a JVM leaves one connected unix socket open for the JVM's life: made before a
        // test counts its descriptors, so it is not taken for a leak.
        try (RuntimeResources resources = new RuntimeResources("remote-tty-warm-up-")) {
            LinuxRuntime runtime = new LinuxRuntime(new RuntimeConfig(warm.resolve("state"), warm.resolve("work")),
                    resources);
            Bundle bundle = runtime.create(NS, WARM_ID, BusyboxBundle.spec(Files.createDirectories(
                    warm.resolve("specs")), "/bin/true")).block(TIMEOUT);
            BusyboxBundle.writeRootfs(bundle.rootfs());
            ShimClient shim = bundle.newShimClient(ShimOpt.remote(SHIM, warm.resolve("daemon.sock").toString(),
                    null, false, null), RuncOptions.defaults().withRuntimeRoot(warm.resolve("runc").toString()))
                    .block(TIMEOUT);
            shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
            shim.start().block(TIMEOUT);
            shim.awaitExit().block(TIMEOUT);
            shim.delete().block(TIMEOUT);
            shim.shutdown().block(TIMEOUT);
            runtime.delete(NS, WARM_ID).block(TIMEOUT);
        }
    }

    @BeforeEach
    void startRuntime() {
        fdsBefore = Leaks.openFds();
        resources = new RuntimeResources("remote-tty-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
        runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
    }

    @AfterEach
    void checkNothingIsLeft() throws Exception {
        try {
            screens.forEach(TerminalScreen::close);
            for (Bundle bundle : bundles) {
                Path io = bundle.workDir().resolve("io");
                if (Files.isDirectory(io)) {
                    try (Stream<Path> left = Files.list(io)) {
                        assertThat(left).as("FIFOs left in " + io).isEmpty();
                    }
                }
                runtime.delete(bundle.namespace(), bundle.id()).block(TIMEOUT);
            }
            for (Path root : List.of(temp.resolve("state").resolve(NS), temp.resolve("work").resolve(NS))) {
                if (Files.isDirectory(root)) {
                    try (Stream<Path> left = Files.list(root)) {
                        assertThat(left).as("bundles left in " + root).isEmpty();
                    }
                }
            }
            assertThat(Leaks.runcContainers(temp.resolve("runc").resolve(NS))).as("runc containers").isEmpty();
            Processes.awaitNoneMentioning(temp.resolve("daemon.sock").toString(), Duration.ofSeconds(10));
            assertThat(Leaks.awaitNoProcessesOf(temp.toRealPath(), NS, Duration.ofSeconds(5)))
                    .as("shims and container processes").isEmpty();
            assertThat(MountTable.atOrUnder(MountTable.mountPoints(), temp.toRealPath())).as("mounts left").isEmpty();
            assertThat(Zombies.awaitNone(Duration.ofSeconds(5))).as("zombie children of the JVM").isEmpty();
        } finally {
            resources.close();
        }
        // Jars the class loader opened on first use stay open for the JVM's life: not the runtime's.
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5)).values())
                .as("descriptors left open").allMatch(target -> target.endsWith(".jar"));
    }

    @Test
    void anInteractiveShellOnInitsTerminal() throws Exception {
        ShimClient shim = shim(bundle(true, "/bin/sh"));
        TerminalScreen screen = screen();
        ProcessIo io = shim.create(CreateOptions.of(Stdio.terminal(screen.keys(), new TerminalSize(100, 30))))
                .block(TIMEOUT);
        screen.read(io.stdout());
        List<byte[]> stderr = io.stderr().collectList().block(TIMEOUT);
        shim.start().block(TIMEOUT);

        screen.await(PROMPT, TIMEOUT);
        screen.type("tty\n");
        assertThat(screen.await("(/dev/pts/\\d+)", TIMEOUT)).startsWith("/dev/pts/");
        // The size set before the start, as stty prints it: rows, then columns.
        screen.type("stty size\n");
        assertThat(screen.await("\n(\\d+ \\d+)\r", TIMEOUT)).isEqualTo("30 100");
        shim.resize(ShimClient.INIT, new TerminalSize(120, 40)).block(TIMEOUT);
        screen.type("stty size\n");
        assertThat(screen.await("\n(\\d+ \\d+)\r", TIMEOUT)).isEqualTo("40 120");
        // What is typed reaches the process; stderr comes on the same stream.
        screen.type("read word; echo got-$word >&2\n");
        screen.type("typed\n");
        screen.await("got-typed", TIMEOUT);

        // Ctrl-C interrupts the foreground sleep; the shell survives and runs the next command.
        screen.type("sleep 1000\n");
        awaitForeground(shim, "sleep");
        screen.type("\u0003");
        screen.type("echo still-$((40+2))\n");
        screen.await("still-42", TIMEOUT);
        assertThat(shim.pids().collectList().block(TIMEOUT)).hasSize(1);

        screen.type("exit 3\n");
        ExitStatus exit = shim.awaitExit().block(TIMEOUT);
        assertThat(exit.status()).isEqualTo(3);
        assertThat(screen.awaitEnd(TIMEOUT)).isNull();
        assertThat(stderr).as("a terminal's stderr: empty, ended").isEmpty();
        StepVerifier.create(shim.resize(ShimClient.INIT, new TerminalSize(10, 10)))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining("exited"))
                .verify(TIMEOUT);
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void anExecWithATerminalInARunningContainerAndTheResizesRefused() throws Exception {
        ShimClient shim = shim(bundle(false, "/bin/sleep", "1000"));
        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        TerminalScreen screen = screen();

        // The typed process says no terminal: it follows its stdio.
        ProcessIo io = shim.exec("tty", Spec.Process.builder().args("/bin/sh").build(),
                Stdio.terminal(screen.keys(), new TerminalSize(90, 33))).block(TIMEOUT);
        screen.read(io.stdout());
        // Before its start the shim has no console for it (and would drop the resize, saying yes): refused.
        StepVerifier.create(shim.resize("tty", new TerminalSize(61, 17)))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining("not started"))
                .verify(TIMEOUT);
        shim.start("tty").block(TIMEOUT);
        screen.await(PROMPT, TIMEOUT);
        screen.type("tty; stty size\n");
        assertThat(screen.await("(/dev/pts/\\d+)", TIMEOUT)).startsWith("/dev/pts/");
        assertThat(screen.await("\n(\\d+ \\d+)\r", TIMEOUT)).as("sized before it ran").isEqualTo("33 90");
        shim.resize("tty", new TerminalSize(61, 17)).block(TIMEOUT);
        screen.type("stty size\n");
        assertThat(screen.await("\n(\\d+ \\d+)\r", TIMEOUT)).isEqualTo("17 61");
        screen.type("sleep 1000\n");
        awaitForeground(shim, "sleep");
        screen.type("\u0003echo exec-$((1+1))\n");
        screen.await("exec-2", TIMEOUT);

        StepVerifier.create(shim.resize(ShimClient.INIT, new TerminalSize(80, 24)))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining("no terminal"))
                .verify(TIMEOUT);
        StepVerifier.create(shim.resize("nobody", new TerminalSize(80, 24)))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(NotFoundException.class)
                        .hasMessageContaining("nobody"))
                .verify(TIMEOUT);

        screen.type("exit\n");
        assertThat(shim.awaitExit("tty").block(TIMEOUT).status()).isZero();
        assertThat(screen.awaitEnd(TIMEOUT)).isNull();
        StepVerifier.create(shim.resize("tty", new TerminalSize(80, 24)))
                .expectError(FailedPreconditionException.class)
                .verify(TIMEOUT);
        shim.delete("tty").block(TIMEOUT);
        StepVerifier.create(shim.resize("tty", new TerminalSize(80, 24)))
                .expectError(NotFoundException.class)
                .verify(TIMEOUT);
        shim.kill(9, false).block(TIMEOUT);
        shim.awaitExit().block(TIMEOUT);
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void theSpecAndTheStdioMustAgreeBeforeAnythingRuns() throws Exception {
        Bundle noTerminal = bundle(false, "/bin/sh");
        ShimClient shim = shim(noTerminal);
        StepVerifier.create(shim.create(CreateOptions.of(Stdio.terminal(null, TerminalSize.DEFAULT))))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOfSatisfying(InvalidSpecException.class,
                        invalid -> assertThat(invalid.field()).isEqualTo("process.terminal")))
                .verify(TIMEOUT);
        shim.shutdown().block(TIMEOUT);

        Bundle terminal = bundle(true, "/bin/sleep", "1000");
        shim = shim(terminal);
        StepVerifier.create(shim.create(CreateOptions.of(Stdio.streams(null))))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOfSatisfying(InvalidSpecException.class,
                        invalid -> assertThat(invalid.field()).isEqualTo("process.terminal")))
                .verify(TIMEOUT);
        assertThat(Leaks.runcContainers(temp.resolve("runc").resolve(NS))).as("nothing ran").isEmpty();

        // The same bundle with a terminal runs; raw JSON whose terminal disagrees with its stdio is refused.
        shim.create(CreateOptions.of(Stdio.terminal(null, TerminalSize.DEFAULT))).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        byte[] raw = "{\"terminal\":true,\"args\":[\"/bin/true\"],\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0}}"
                .getBytes(UTF_8);
        StepVerifier.create(shim.exec("raw", raw, Stdio.streams(null)))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOfSatisfying(InvalidSpecException.class,
                        invalid -> assertThat(invalid.field()).isEqualTo("process.terminal")))
                .verify(TIMEOUT);
        // A typed process asking for a terminal with plain streams gets none, and runs.
        ProcessIo io = shim.exec("typed", Spec.Process.builder().args("/bin/echo", "plain").terminal(true).build(),
                Stdio.streams(null)).block(TIMEOUT);
        Mono<String> out = text(io.stdout());
        shim.start("typed").block(TIMEOUT);
        assertThat(shim.awaitExit("typed").block(TIMEOUT).status()).isZero();
        assertThat(out.block(TIMEOUT)).isEqualTo("plain\n");
        shim.delete("typed").block(TIMEOUT);
        shim.kill(9, false).block(TIMEOUT);
        shim.awaitExit().block(TIMEOUT);
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void whenTypingEndsTheTerminalStaysWithTheProcess() throws Exception {
        // The runc shim ends a console's output copy once the console's stdin FIFO reaches end of file: a client
        // that closed the shim's stdin when its typing ended lost every later byte, here the trap's line.
        ShimClient shim = shim(bundle(true, "/bin/sh", "-c", "read first; echo got-$first;"
                + " trap 'echo winched-$((2+2))' WINCH; echo trapped; while :; do sleep 0.1; done"));
        TerminalScreen screen = screen();
        ProcessIo io = shim.create(CreateOptions.of(Stdio.terminal(screen.keys(), TerminalSize.DEFAULT)))
                .block(TIMEOUT);
        screen.read(io.stdout());
        shim.start().block(TIMEOUT);
        screen.type("one\n");
        screen.await("got-one", TIMEOUT);
        screen.await("trapped", TIMEOUT);
        screen.stopTyping();
        shim.closeIo(ShimClient.INIT).block(TIMEOUT);

        shim.resize(ShimClient.INIT, new TerminalSize(50, 20)).block(TIMEOUT);
        screen.await("winched-4", TIMEOUT);
        shim.kill(9, false).block(TIMEOUT);
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isEqualTo(137);
        assertThat(screen.awaitEnd(TIMEOUT)).isNull();
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void createsAndExecsCancelledAtRandomPointsLeaveTheShimUsableAndNothingBehind() throws Exception {
        ShimClient shim = shim(bundle(true, "/bin/sh"));
        long seed = Long.getLong("shimmer.seed", System.nanoTime());
        Random random = new Random(seed);
        long began = System.nanoTime();
        shellSession(shim, "");
        Duration takes = Duration.ofNanos(System.nanoTime() - began);
        for (int i = 0; i < 8; i++) {
            Duration delay = Duration.ofNanos((long) (random.nextDouble() * takes.toNanos()));
            try {
                cancelAfter(shim.create(CreateOptions.of(Stdio.terminal(new TerminalScreen().keys(),
                        TerminalSize.DEFAULT))), delay);
                // Undone, or there and deleted now (a delete waits for the create in flight).
                shim.delete().onErrorResume(NotFoundException.class, absent -> Mono.empty()).block(TIMEOUT);
            } catch (Throwable e) {
                throw new AssertionError("seed " + seed + ", create " + i + " cancelled after " + delay + ": " + e, e);
            }
        }
        shim.create(CreateOptions.of(Stdio.terminal(null, TerminalSize.DEFAULT))).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        for (int i = 0; i < 8; i++) {
            String execId = "x" + i;
            Duration delay = Duration.ofNanos((long) (random.nextDouble() * takes.toNanos()));
            try {
                cancelAfter(shim.exec(execId, Spec.Process.builder().args("/bin/sh").build(),
                        Stdio.terminal(new TerminalScreen().keys(), TerminalSize.DEFAULT))
                        .flatMap(io -> shim.start(execId)), delay);
                if (shim.state(execId).onErrorResume(NotFoundException.class, absent -> Mono.empty())
                        .block(TIMEOUT) != null) {
                    // Started or not, an exec shell with nobody typing waits: killed, then deleted.
                    shim.kill(execId, 9).onErrorResume(error -> Mono.empty()).block(TIMEOUT);
                    shim.delete(execId).onErrorResume(FailedPreconditionException.class, running -> shim
                            .awaitExit(execId).then(shim.delete(execId))).block(TIMEOUT);
                }
            } catch (Throwable e) {
                throw new AssertionError("seed " + seed + ", exec " + i + " cancelled after " + delay + ": " + e, e);
            }
        }
        shellSession(shim, "after");
        assertThat(shim.pids().collectList().block(TIMEOUT)).as("only init runs").hasSize(1);
        shim.kill(9, false).block(TIMEOUT);
        shim.awaitExit().block(TIMEOUT);
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void resizesRacingTheExitEndInSuccessOrExited() throws Exception {
        ShimClient shim = shim(bundle(true, "/bin/sh", "-c", "read line; exit 5"));
        TerminalScreen screen = screen();
        ProcessIo io = shim.create(CreateOptions.of(Stdio.terminal(screen.keys(), TerminalSize.DEFAULT)))
                .block(TIMEOUT);
        screen.read(io.stdout());
        shim.start().block(TIMEOUT);
        List<String> outcomes = Flux.range(0, 40)
                .delayElements(Duration.ofMillis(2))
                .flatMap(i -> {
                    if (i == 10) {
                        screen.type("go\n");
                    }
                    return shim.resize(ShimClient.INIT, new TerminalSize(20 + i, 10 + i)).thenReturn("resized")
                            .onErrorResume(FailedPreconditionException.class, exited -> Mono.just("exited"));
                })
                .collectList().block(TIMEOUT);
        assertThat(outcomes).hasSize(40).allMatch(outcome -> outcome.equals("resized") || outcome.equals("exited"));
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isEqualTo(5);
        // Once the exit is known, no resize is taken for done.
        StepVerifier.create(shim.resize(ShimClient.INIT, new TerminalSize(99, 33)))
                .expectError(FailedPreconditionException.class)
                .verify(TIMEOUT);
        assertThat(screen.awaitEnd(TIMEOUT)).isNull();
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void theShimKilledMidSessionFailsEveryCallAndEndsTheOutput() throws Exception {
        Bundle bundle = bundle(true, "/bin/sh");
        CompletableFuture<ShimExit> shimExit = new CompletableFuture<>();
        ShimClient shim = bundle.newShimClient(ShimOpt.remote(SHIM, temp.resolve("daemon.sock").toString(), null,
                false, shimExit::complete), runc).block(TIMEOUT);
        TerminalScreen screen = screen();
        ProcessIo io = shim.create(CreateOptions.of(Stdio.terminal(screen.keys(), TerminalSize.DEFAULT)))
                .block(TIMEOUT);
        screen.read(io.stdout());
        int pid = shim.start().block(TIMEOUT);
        screen.await(PROMPT, TIMEOUT);
        int shimPid = ((RemoteShimClient) shim).session().shimPid();

        new ProcessBuilder("kill", "-9", Integer.toString(shimPid)).start().waitFor();

        // The session cleans up after the dead shim (its delete, the FIFOs), then tells the exit handler.
        assertThat(shimExit.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isNotNull();
        assertThat(Processes.awaitGone(pid, TIMEOUT)).as("init, with its shim").isTrue();
        screen.awaitEnd(TIMEOUT);
        StepVerifier.create(shim.resize(ShimClient.INIT, new TerminalSize(70, 20)))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOfSatisfying(ShimmerException.class,
                        failed -> assertThat(failed.code()).isEqualTo(ErrorCode.UNAVAILABLE)))
                .verify(TIMEOUT);
        StepVerifier.create(shim.awaitExit()).expectError().verify(TIMEOUT);
    }

    // ---- helpers

    private ShimClient shim(Bundle bundle) {
        return bundle.newShimClient(ShimOpt.remote(SHIM, temp.resolve("daemon.sock").toString(), null, false, null),
                runc).block(TIMEOUT);
    }

    /**
     * A shell session on a terminal, init's ({@code execId} "") or an exec's: created, started, a command typed and
     * its answer read, exited and deleted.
     */
    private void shellSession(ShimClient shim, String execId) throws Exception {
        TerminalScreen screen = screen();
        Stdio stdio = Stdio.terminal(screen.keys(), TerminalSize.DEFAULT);
        ProcessIo io = execId.isEmpty() ? shim.create(CreateOptions.of(stdio)).block(TIMEOUT)
                : shim.exec(execId, Spec.Process.builder().args("/bin/sh").build(), stdio).block(TIMEOUT);
        screen.read(io.stdout());
        shim.start(execId).block(TIMEOUT);
        screen.type("echo session-$((3*3)); exit\n");
        screen.await("session-9", TIMEOUT);
        assertThat(shim.awaitExit(execId).block(TIMEOUT).status()).isZero();
        assertThat(screen.awaitEnd(TIMEOUT)).isNull();
        shim.delete(execId).block(TIMEOUT);
    }

    /** Runs {@code operation} and cancels it after {@code delay}. */
    private static void cancelAfter(Mono<?> operation, Duration delay) {
        Disposable subscription = operation.subscribe(done -> {}, error -> {});
        Mono.delay(delay).block();
        subscription.dispose();
    }

    private TerminalScreen screen() {
        TerminalScreen screen = new TerminalScreen();
        screens.add(screen);
        return screen;
    }

    /** A busybox bundle (with {@code tty} and {@code stty}) whose process asks for a terminal or not. */
    private Bundle bundle(boolean terminal, String... args) throws Exception {
        ObjectNode spec = (ObjectNode) JSON.readTree(BusyboxBundle.spec(Files.createDirectories(temp.resolve("specs")),
                args));
        ((ObjectNode) spec.get("process")).put("terminal", terminal);
        String id = "t-" + UUID.randomUUID().toString().substring(0, 8);
        Bundle bundle = runtime.create(NS, id, JSON.writeValueAsBytes(spec)).block(TIMEOUT);
        BusyboxBundle.writeRootfs(bundle.rootfs());
        for (String applet : List.of("tty", "stty")) {
            Files.createSymbolicLink(bundle.rootfs().resolve("bin").resolve(applet), Path.of("busybox"));
        }
        bundles.add(bundle);
        return bundle;
    }

    /**
     * Waits until a process of the container runs {@code name} in its terminal's foreground: Ctrl-C is its. That
     * the shell forked it is not enough (see {@link Processes#leadsTheForeground}). /proc has no signal.
     */
    private static void awaitForeground(ShimClient shim, String name) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!shim.pids().any(info -> Processes.leadsTheForeground(info.pid(), name)).block(TIMEOUT)) {
            assertThat(System.nanoTime()).as("%s in the terminal's foreground", name).isLessThan(deadline);
            Thread.sleep(20);
        }
    }

    /** Subscribed on this thread before this returns (on an io thread, it could come after the exit). */
    private Mono<String> text(Flux<byte[]> chunks) {
        Mono<String> text = chunks.map(bytes -> new String(bytes, UTF_8)).reduce("", String::concat).cache();
        text.subscribe(ignored -> {}, error -> {});
        return text;
    }
}
