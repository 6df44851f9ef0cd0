package org.shimmer.runtime.linux.container;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.ExecProcess;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.spec.CgroupsLeft;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.Leftovers;
import org.shimmer.runtime.linux.testing.NettyLeakDetection;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.linux.testing.TerminalScreen;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TerminalSize;
import org.shimmer.runtime.spec.Spec;
import reactor.core.publisher.Mono;
import reactor.test.StepVerifier;

/**
 * Terminals through {@link RunRequest#withTerminal} and {@link Container#exec(String, Spec.Process, Stdio)}, on both
 * shims: an interactive busybox {@code sh} as init and as an exec, typed into, resized, interrupted; what is refused;
 * and a release in the middle of a session leaving nothing.
 */
@ExtendWith(NettyLeakDetection.class)
class ContainerTerminalTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "container-tty-test";
    private static final Path SHIM = Path.of("containerd-shim-runc-v2");
    private static final String PROMPT = "# ";
    private static final String STTY_SIZE = "\n(\\d+ \\d+)\r";

    @TempDir
    Path temp;

    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private RuncOptions runc;
    private Path rootfs;
    private final List<TerminalScreen> screens = new CopyOnWriteArrayList<>();

    private Map<Integer, String> fdsBefore;

    @BeforeAll
    static void warmUp(@TempDir Path warm) throws Exception {
        // The first remote shim of a JVM leaves one connected unix socket open for the JVM's life: made before a
        // test counts its descriptors, so it is not taken for a leak.
        Path rootfs = Files.createDirectories(warm.resolve("rootfs"));
        BusyboxBundle.writeRootfs(rootfs);
        try (RuntimeResources resources = new RuntimeResources("container-tty-warm-up-")) {
            LinuxRuntime runtime = new LinuxRuntime(new RuntimeConfig(warm.resolve("state"), warm.resolve("work")),
                    resources);
            RunRequest request = RunRequest.of(NS, "warm", Spec.builder().args("/bin/true").build(), rootfs)
                    .withShim(ShimOpt.remote(SHIM, warm.resolve("daemon.sock").toString(), null, false, null))
                    .withRuncOptions(RuncOptions.defaults().withRuntimeRoot(warm.resolve("runc").toString()));
            Mono.usingWhen(runtime.run(request), Container::exit, Container::release).block(TIMEOUT);
        }
        // Its state root is not a test's: no test's check removes the cgroups runc made above its container's.
        CgroupsLeft.assertNoneUnder(warm.resolve("state"), NS);
    }

    @BeforeEach
    void startRuntime() throws Exception {
        fdsBefore = Leaks.openFds();
        resources = new RuntimeResources("container-tty-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
        runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
        rootfs = Files.createDirectories(temp.resolve("rootfs"));
        BusyboxBundle.writeRootfs(rootfs);
        for (String applet : List.of("tty", "stty")) {
            Files.createSymbolicLink(rootfs.resolve("bin").resolve(applet), Path.of("busybox"));
        }
    }

    @AfterEach
    void checkNothingIsLeft() throws Exception {
        try {
            screens.forEach(TerminalScreen::close);
            Leftovers.assertNoneUnder(temp, NS, () -> {
                assertThat(Leaks.awaitNoProcessesOf(rootfs, rootfs.toString(), Duration.ofSeconds(5)))
                        .as("container processes").isEmpty();
                Processes.awaitNoneMentioning(temp.resolve("daemon.sock").toString(), Duration.ofSeconds(10));
            });
        } finally {
            resources.close();
        }
        // Jars the class loader opened on first use stay open for the JVM's life: not the runtime's.
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5)).values())
                .as("descriptors left open").allMatch(target -> target.endsWith(".jar"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aShellOnATerminalAndAnExecWithOne(String kind) throws Exception {
        TerminalScreen screen = screen();
        // The spec says no terminal: the request's terminal decides.
        Container container = runtime.run(request(kind, "/bin/sh").withStdin(screen.keys())
                .withTerminal(new TerminalSize(100, 30))).block(TIMEOUT);
        try {
            assertThat(container.spec().process().terminal()).isTrue();
            screen.read(container.stdout());
            screen.await(PROMPT, TIMEOUT);
            screen.type("tty; stty size\n");
            assertThat(screen.await("(/dev/pts/\\d+)", TIMEOUT)).startsWith("/dev/pts/");
            assertThat(screen.await(STTY_SIZE, TIMEOUT)).isEqualTo("30 100");
            container.resize(new TerminalSize(120, 40)).block(TIMEOUT);
            screen.type("stty size; echo err-$((5*5)) >&2\n");
            assertThat(screen.await(STTY_SIZE, TIMEOUT)).isEqualTo("40 120");
            screen.await("err-25", TIMEOUT);
            screen.type("sleep 1000\n");
            awaitForeground(container, "sleep");
            screen.type("\u0003");
            screen.type("echo alive-$((6*7))\n");
            screen.await("alive-42", TIMEOUT);

            TerminalScreen execScreen = screen();
            ExecProcess exec = container.exec("sh2", container.spec().process().toBuilder().args("/bin/sh").build(),
                    Stdio.terminal(execScreen.keys(), new TerminalSize(70, 20))).block(TIMEOUT);
            execScreen.read(exec.stdout());
            execScreen.type("tty; stty size\n");
            assertThat(execScreen.await("(/dev/pts/\\d+)", TIMEOUT)).startsWith("/dev/pts/");
            assertThat(execScreen.await(STTY_SIZE, TIMEOUT)).isEqualTo("20 70");
            exec.resize(new TerminalSize(50, 10)).block(TIMEOUT);
            execScreen.type("stty size; exit 6\n");
            assertThat(execScreen.await(STTY_SIZE, TIMEOUT)).isEqualTo("10 50");
            assertThat(exec.exit().block(TIMEOUT).status()).isEqualTo(6);
            assertThat(exec.stderr().collectList().block(TIMEOUT)).isEmpty();

            // Plain streams: stdin fed, output in the buffers, no terminal to resize.
            TerminalScreen catInput = screen();
            ExecProcess cat = container.exec("cat", Spec.Process.builder().args("/bin/cat").build(),
                    Stdio.streams(catInput.keys())).block(TIMEOUT);
            catInput.read(cat.stdout());
            catInput.type("fed\n");
            catInput.await("fed\n", TIMEOUT);
            StepVerifier.create(cat.resize(TerminalSize.DEFAULT))
                    .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(FailedPreconditionException.class)
                            .hasMessageContaining("no terminal"))
                    .verify(TIMEOUT);
            catInput.stopTyping();
            assertThat(cat.exit().block(TIMEOUT).status()).isZero();
            assertThat(catInput.awaitEnd(TIMEOUT)).isNull();
            assertThat(catInput.printed()).isEqualTo("fed\n");
            StepVerifier.create(container.exec("none", Spec.Process.builder().args("/bin/true").build(),
                            Stdio.none()))
                    .expectError(InvalidSpecException.class)
                    .verify(TIMEOUT);

            screen.type("exit 4\n");
            assertThat(container.exit().block(TIMEOUT).status()).isEqualTo(4);
            assertThat(container.stderr().collectList().block(TIMEOUT)).isEmpty();
        } finally {
            container.release().block(TIMEOUT);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aSpecAskingForATerminalTheRequestDoesNotGiveIsRefusedBeforeAnythingIsMade(String kind) {
        RunRequest request = RunRequest.of(NS, "c-" + UUID.randomUUID().toString().substring(0, 8),
                Spec.builder().args("/bin/sh").terminal(true).build(), rootfs).withShim(shim(kind))
                .withRuncOptions(runc);
        StepVerifier.create(runtime.run(request))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOfSatisfying(InvalidSpecException.class,
                        invalid -> assertThat(invalid.field()).isEqualTo("process.terminal")))
                .verify(TIMEOUT);
        assertThat(temp.resolve("state").resolve(NS).resolve(request.id())).doesNotExist();
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aContainerWithoutATerminalRefusesAResize(String kind) {
        Container container = runtime.run(request(kind, "/bin/sleep", "1000")).block(TIMEOUT);
        try {
            StepVerifier.create(container.resize(TerminalSize.DEFAULT))
                    .expectErrorSatisfies(error -> assertThat(error)
                            .isInstanceOf(FailedPreconditionException.class).hasMessageContaining("terminal"))
                    .verify(TIMEOUT);
        } finally {
            container.release().block(TIMEOUT);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void releasedInTheMiddleOfATerminalSessionLeavesNothing(String kind) throws Exception {
        TerminalScreen screen = screen();
        Container container = runtime.run(request(kind, "/bin/sh").withStdin(screen.keys())
                .withTerminal(TerminalSize.DEFAULT)).block(TIMEOUT);
        screen.read(container.stdout());
        screen.await(PROMPT, TIMEOUT);
        TerminalScreen execScreen = screen();
        ExecProcess exec = container.exec("busy", Spec.Process.builder().args("/bin/sh").build(),
                Stdio.terminal(execScreen.keys(), TerminalSize.DEFAULT)).block(TIMEOUT);
        execScreen.read(exec.stdout());
        execScreen.await(PROMPT, TIMEOUT);
        screen.type("sleep 1000\n");
        awaitPids(container, 3);

        container.release().block(TIMEOUT);

        assertThat(container.exit().block(TIMEOUT).status()).isEqualTo(137);
        assertThat(screen.awaitEnd(TIMEOUT)).isNull();
        execScreen.awaitEnd(TIMEOUT);
    }

    /**
     * A plugin stop while a terminal's process runs on (one that ignores the hang-up, as {@code nohup} makes it):
     * the reader of its terminal learns that the runtime stopped, as a reader of plain output does, not that the
     * output ended. The local shim's terminal completed its reader, which took the process for gone.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aReaderOfATerminalLearnsThatThePluginStoppedNotThatTheOutputEnded(String kind) throws Exception {
        Container container = runtime.run(request(kind, "/bin/sh", "-c", "trap '' HUP; echo ready; sleep 600")
                .withTerminal(TerminalSize.DEFAULT)).block(TIMEOUT);
        TerminalScreen screen = screen().read(container.stdout());
        screen.await("ready", TIMEOUT);

        resources.close();

        try {
            assertThat(screen.awaitEnd(TIMEOUT)).isInstanceOf(UnavailableException.class)
                    .hasMessageContaining("the runtime stopped");
            assertThat(Processes.isRunning(container.pid())).as("the process, after the hang-up").isTrue();
        } finally {
            resources = new RuntimeResources("container-tty-test-");
            runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
            runtime.forceDelete(NS, container.id()).block(TIMEOUT);
        }
    }

    private ShimOpt shim(String kind) {
        return switch (kind) {
            case "local" -> ShimOpt.local();
            case "remote" -> ShimOpt.remote(SHIM, temp.resolve("daemon.sock").toString(), null, false, null);
            default -> throw new IllegalArgumentException(kind);
        };
    }

    private RunRequest request(String kind, String... args) {
        return RunRequest.of(NS, "c-" + UUID.randomUUID().toString().substring(0, 8), Spec.builder().args(args)
                .build(), rootfs).withShim(shim(kind)).withRuncOptions(runc);
    }

    private TerminalScreen screen() {
        TerminalScreen screen = new TerminalScreen();
        screens.add(screen);
        return screen;
    }

    /** Waits until a process of the container runs {@code name} in its terminal's foreground: Ctrl-C is its. */
    private static void awaitForeground(Container container, String name) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!container.shim().pids().any(info -> Processes.leadsTheForeground(info.pid(), name))
                .block(TIMEOUT)) {
            assertThat(System.nanoTime()).as("%s in the terminal's foreground", name).isLessThan(deadline);
            Thread.sleep(20);
        }
    }

    /** Waits until the container has {@code count} processes (a command the shell started): no signal but /proc. */
    private static void awaitPids(Container container, int count) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (container.shim().pids().count().block(TIMEOUT) < count) {
            assertThat(System.nanoTime()).as("%d processes in the container", count).isLessThan(deadline);
            Thread.sleep(20);
        }
    }
}
