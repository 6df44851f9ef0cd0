package org.shimmer.runtime.linux.shim.local;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.reactivestreams.Subscription;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.shim.TaskProcess;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.ConsoleIntruder;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.linux.testing.Zombies;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ProcessInfo;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import org.shimmer.runtime.shim.TerminalSize;
import org.shimmer.runtime.spec.Spec;
import reactor.core.Disposable;
import reactor.core.publisher.BaseSubscriber;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import reactor.test.StepVerifier;

/**
 * Terminals in the local shim (issue 13), seen from inside the container: runc's console socket, the master copied
 * both ways on the poll loop, resize, and what each failure or cancel leaves behind (nothing).
 */
class LocalTerminalTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "tty-test";
    private static final TerminalSize SIZE = new TerminalSize(100, 30);
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path temp;

    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private RuncOptions runc;

    @BeforeEach
    void startRuntime() {
        resources = new RuntimeResources("tty-test-");
        runtime = new LinuxRuntime(config(), resources);
        runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
    }

    private RuntimeConfig config() {
        return new RuntimeConfig(temp.resolve("state"), temp.resolve("work"));
    }

    @AfterEach
    void checkNothingIsLeft() throws Exception {
        resources.close();
        List<String> left = Leaks.runcContainers(runcRoot());
        // A failed test must not leave its container running on a machine others share.
        for (String id : left) {
            Processes.run(null, "runc", "--root", runcRoot().toString(), "delete", "--force", id);
        }
        assertThat(left).as("runc containers left").isEmpty();
    }

    @Test
    void anInitShellOnATerminalAnswersTtyStty_SizeResizeOneStreamCtrlCAndCtrlD() throws Exception {
        Bundle bundle = bundle(true, "/bin/sh");
        ShimClient shim = warmShim(bundle);
        Map<Integer, String> fdsBefore = Leaks.openFds();
        Session session = new Session();

        ProcessIo io = shim.create(CreateOptions.of(Stdio.terminal(session.keys(), SIZE))).block(TIMEOUT);
        session.read(io);
        StepVerifier.create(io.stderr()).verifyComplete();
        int pid = shim.start().block(TIMEOUT);

        converse(shim, ShimClient.INIT, pid, session);
        session.type("exit 7\n");
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isEqualTo(7);
        session.awaitEnd();
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
        assertNothingLeaks(bundle, fdsBefore);
    }

    @Test
    void anExecShellOnATerminalInARunningContainerDoesTheSame() throws Exception {
        Bundle bundle = bundle(false, "/bin/sleep", "600");
        ShimClient shim = warmShim(bundle);
        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        Map<Integer, String> fdsBefore = Leaks.openFds();
        Session session = new Session();

        // The typed process asks for no terminal: exec sets it to match the stdio.
        ProcessIo io = shim.exec("sh1", Spec.Process.builder().args("/bin/sh").build(),
                Stdio.terminal(session.keys(), SIZE)).block(TIMEOUT);
        session.read(io);
        StepVerifier.create(io.stderr()).verifyComplete();
        int pid = shim.start("sh1").block(TIMEOUT);

        converse(shim, "sh1", pid, session);
        session.type("exit 3\n");
        assertThat(shim.awaitExit("sh1").block(TIMEOUT).status()).isEqualTo(3);
        session.awaitEnd();
        shim.delete("sh1").block(TIMEOUT);
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5))).as("descriptors left open").isEmpty();
        stop(shim);
        assertNothingLeaks(bundle, fdsBefore);
    }

    /** What an operator does first on a terminal, and what each answer proves. */
    private void converse(ShimClient shim, String execId, int shellPid, Session session) throws Exception {
        int mark = session.type("busybox tty\n");
        session.await(mark, "/dev/pts/\\d+");

        mark = session.type("busybox stty size\n");
        session.await(mark, "\\r\\n30 100\\r\\n");

        shim.resize(execId, new TerminalSize(120, 40)).block(TIMEOUT);
        mark = session.type("busybox stty size\n");
        session.await(mark, "\\r\\n40 120\\r\\n");

        // stdout and stderr are one stream, in the order written.
        mark = session.type("echo out1; echo err1 >&2; echo out2\n");
        session.await(mark, "\\r\\nout1\\r\\nerr1\\r\\nout2\\r\\n");

        // Ctrl-C reaches the foreground job through the line discipline; the shell survives it.
        mark = session.type("(exec sleep 30)\n");
        awaitForegroundJob(shim, shellPid);
        session.type("\u0003");
        mark = session.type("echo alive-$?\n");
        session.await(mark, "alive-130", Duration.ofSeconds(10));

        // Typed input reaches the process, echoed by the terminal; Ctrl-D at a line's start is end of input.
        mark = session.type("(exec cat)\n");
        awaitForegroundJob(shim, shellPid);
        session.type("hello\n");
        session.await(mark, "hello\\r\\nhello\\r\\n");
        session.type("\u0004");
        mark = session.type("echo cat-ended-$?\n");
        session.await(mark, "cat-ended-0");
    }

    @Test
    void resizeWithoutATerminalOfAnUnknownExecOrAfterTheExitIsRefusedTyped() throws Exception {
        Bundle bundle = bundle(false, "/bin/sleep", "600");
        ShimClient shim = warmShim(bundle);
        shim.create(CreateOptions.of(Stdio.streams(null))).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        Map<Integer, String> fdsBefore = Leaks.openFds();

        StepVerifier.create(shim.resize(ShimClient.INIT, SIZE))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining("no terminal"))
                .verify(TIMEOUT);
        StepVerifier.create(shim.resize("nobody", SIZE))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(NotFoundException.class)
                        .hasMessageContaining("nobody"))
                .verify(TIMEOUT);

        ProcessIo io = shim.exec("short", Spec.Process.builder().args("/bin/echo", "bye").build(),
                Stdio.terminal(null, SIZE)).block(TIMEOUT);
        StepVerifier.create(shim.resize("short", SIZE))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining("not started"))
                .verify(TIMEOUT);
        Mono<String> printed = text(io.stdout()).cache();
        printed.subscribe();
        shim.start("short").block(TIMEOUT);
        assertThat(shim.awaitExit("short").block(TIMEOUT).status()).isZero();
        assertThat(printed.block(TIMEOUT)).isEqualTo("bye\r\n");
        StepVerifier.create(shim.resize("short", SIZE))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining("exited"))
                .verify(TIMEOUT);
        shim.delete("short").block(TIMEOUT);
        StepVerifier.create(shim.resize("short", SIZE))
                .expectError(NotFoundException.class)
                .verify(TIMEOUT);

        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5))).as("descriptors left open").isEmpty();
        stop(shim);
        assertNothingLeaks(bundle, fdsBefore);
    }

    @Test
    void aSpecThatDisagreesWithItsStdioIsInvalidBeforeRuncRuns() throws Exception {
        Bundle noTerminal = bundle(false, "/bin/sleep", "600");
        ShimClient shim = warmShim(noTerminal);
        Map<Integer, String> fdsBefore = Leaks.openFds();

        StepVerifier.create(shim.create(CreateOptions.of(Stdio.terminal(null, SIZE))))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOfSatisfying(InvalidSpecException.class,
                        invalid -> assertThat(invalid.field()).isEqualTo("process.terminal")))
                .verify(TIMEOUT);
        Bundle terminal = bundle(true, "/bin/sh");
        ShimClient other = shim(terminal);
        StepVerifier.create(other.create(CreateOptions.of(Stdio.none())))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOfSatisfying(InvalidSpecException.class,
                        invalid -> assertThat(invalid.field()).isEqualTo("process.terminal")))
                .verify(TIMEOUT);
        assertThat(Leaks.runcContainers(runcRoot())).as("runc never ran").isEmpty();

        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        byte[] asksForOne = "{\"args\": [\"/bin/true\"], \"cwd\": \"/\", \"terminal\": true}".getBytes(UTF_8);
        byte[] asksForNone = "{\"args\": [\"/bin/true\"], \"cwd\": \"/\"}".getBytes(UTF_8);
        StepVerifier.create(shim.exec("e1", asksForOne, Stdio.none()))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(InvalidSpecException.class)
                        .hasMessageContaining("process.terminal"))
                .verify(TIMEOUT);
        StepVerifier.create(shim.exec("e1", asksForNone, Stdio.terminal(null, SIZE)))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(InvalidSpecException.class)
                        .hasMessageContaining("process.terminal"))
                .verify(TIMEOUT);
        // The id was never taken, and a typed process asking for a terminal gets none on plain stdio.
        shim.exec("e1", Spec.Process.builder().args("/bin/sh", "-c", "test -t 0 || echo no-tty").terminal(true)
                .build(), Stdio.streams(null)).flatMap(io -> shim.start("e1").then(text(io.stdout())))
                .as(StepVerifier::create).expectNext("no-tty\n").verifyComplete();
        shim.awaitExit("e1").block(TIMEOUT);
        shim.delete("e1").block(TIMEOUT);

        stop(shim);
        other.shutdown().block(TIMEOUT);
        assertNothingLeaks(noTerminal, fdsBefore);
        assertNothingLeaks(terminal, fdsBefore);
    }

    @Test
    void runcFailingRemovesTheConsoleSocketAndTheErrorIsRuncs() throws Exception {
        Bundle bundle = bundle(process(true, "/bin/sh").put("cwd", "relative"));
        ShimClient shim = warmShim(bundle(true, "/bin/true"));
        ShimClient failing = shim(bundle);
        Map<Integer, String> fdsBefore = Leaks.openFds();

        StepVerifier.create(failing.create(CreateOptions.of(Stdio.terminal(Flux.never(), SIZE))))
                .expectErrorSatisfies(error -> assertThat(error)
                        .hasMessageContaining("runc create failed: ").hasMessageContaining("wd must be an absolute path"))
                .verify(TIMEOUT);

        assertThat(workFiles(bundle)).as("console socket left").noneMatch(f -> f.contains("console-"));
        failing.shutdown().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
        assertNothingLeaks(bundle, fdsBefore);
    }

    @Test
    void createsCancelledAtRandomPointsLeaveNoSocketNoDescriptorNoContainer() throws Exception {
        long seed = Long.getLong("shimmer.seed", System.nanoTime());
        Random random = new Random(seed);
        Bundle bundle = bundle(true, "/bin/sh", "-c", "echo ok");
        ShimClient shim = warmShim(bundle);
        long started = System.nanoTime();
        assertThat(terminalLifecycle(shim)).isEqualTo("ok\r\n");
        long createTakes = Math.max(1, (System.nanoTime() - started) / 1_000_000);
        Map<Integer, String> fdsBefore = Leaks.openFds();

        for (int i = 0; i < 30; i++) {
            Duration cancelAfter = Duration.ofMillis(random.nextLong(createTakes + 1));
            // What the create handed on is ours even when timeout() then drops it: a timer firing while the
            // value passes makes timeout() drop the value (Reactor's onNextDropped), and the task created for
            // it stayed, so the next create of the loop found it. The value may pass only after timeout() ended
            // block(): once the create settled (state() waits for it), a task still there must be one it handed
            // on, seen by doOnNext then or soon after; one it kept without handing it on would be a leak of ours.
            CompletableFuture<ProcessIo> delivered = new CompletableFuture<>();
            shim.create(CreateOptions.of(Stdio.terminal(Flux.never(), SIZE))).doOnNext(delivered::complete)
                    .timeout(cancelAfter, Mono.empty()).block(TIMEOUT);
            boolean there = shim.state().map(state -> true)
                    .onErrorResume(NotFoundException.class, undone -> Mono.just(false)).block(TIMEOUT);
            if (there) {
                assertThat(delivered).as("seed %d, create %d: the task left was handed on", seed, i)
                        .succeedsWithin(Duration.ofSeconds(5));
                shim.delete().block(TIMEOUT);
            }
        }
        // The next create waits for the undo of the last cancelled one; then everything works.
        assertThat(terminalLifecycle(shim)).as("seed %d", seed).isEqualTo("ok\r\n");

        assertThat(workFiles(bundle)).as("seed %d: console sockets left", seed)
                .noneMatch(f -> f.contains("console-"));
        shim.shutdown().block(TIMEOUT);
        assertNothingLeaks(bundle, fdsBefore);
    }

    /**
     * Another process of root's that reaches the console socket, before runc or after it, passing a terminal of
     * its own: the first connection's master was taken, so a process that came first got what is typed and gave
     * what the container showed, while the container's own terminal went unread and hung up.
     */
    @ParameterizedTest
    @ValueSource(strings = {"before", "after"})
    void aConsoleSocketSomeoneElseConnectedToGivesNoTerminal(String when) throws Exception {
        Path handed = temp.resolve("console-socket");
        Path go = temp.resolve("go");
        runc = runc.withBinaryName(runcHeldAtConsole(when, handed, go).toString());
        Bundle bundle = bundle(true, "/bin/sh", "-c", "echo from-the-container; sleep 600");
        ShimClient shim = warmShim(bundle);
        Map<Integer, String> fdsBefore = Leaks.openFds();

        CompletableFuture<ProcessIo> created = shim.create(CreateOptions.of(Stdio.terminal(Flux.never(), SIZE)))
                .toFuture();
        awaitTrue(() -> Files.exists(handed));
        ConsoleIntruder.passATerminalOfItsOwn(Path.of(Files.readString(handed).strip()));
        Files.createFile(go);

        StepVerifier.create(Mono.fromFuture(created))
                .expectErrorSatisfies(error -> assertThat(error)
                        .hasMessageContaining("more than one process connected to the console socket"))
                .verify(TIMEOUT);
        StepVerifier.create(shim.state()).expectError(NotFoundException.class).verify(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
        assertNothingLeaks(bundle, fdsBefore);
    }

    /**
     * A bundle whose console socket's path would not fit in {@code sun_path} (a long id, as containerd's are): the
     * socket is still made in its work directory, given to runc through its directory's descriptor, and the
     * terminal works. It was made under the temporary directory, where a host killed meanwhile left it for good
     * ({@code TerminalHostCrashTest}).
     */
    @Test
    void aConsoleSocketWhosePathIsTooLongForSun_PathIsStillMadeInTheWorkDirectory() throws Exception {
        Path handed = temp.resolve("console-socket");
        Path go = temp.resolve("go");
        runc = runc.withBinaryName(runcHeldAtConsole("before", handed, go).toString());
        String id = ("t-" + UUID.randomUUID().toString().substring(0, 8) + "-" + "x".repeat(Identifiers.MAX_LENGTH))
                .substring(0, Identifiers.MAX_LENGTH);
        Bundle bundle = bundle(process(true, "/bin/sh", "-c", "echo ok"), id);
        ShimClient shim = warmShim(bundle);
        Map<Integer, String> fdsBefore = Leaks.openFds();

        CompletableFuture<String> printed = CompletableFuture.supplyAsync(() -> terminalLifecycle(shim));
        awaitTrue(() -> Files.exists(handed));
        try {
            Path socket = Path.of(Files.readString(handed).strip());
            assertThat(socket.toString().length()).as("runc's path to it").isLessThanOrEqualTo(107);
            assertThat(socket.getParent().toRealPath().toString()).as("where the socket is")
                    .startsWith(bundle.workDir().resolve("io").toString());
        } finally {
            Files.createFile(go);
        }

        assertThat(printed.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isEqualTo("ok\r\n");
        shim.shutdown().block(TIMEOUT);
        assertNothingLeaks(bundle, fdsBefore);
    }

    /**
     * A runtime that stops while runc create of a terminal's init runs (here: runc made the container and sent the
     * master, and has not exited yet): the stop ends runc and fails the create, which can neither record the
     * container nor undo it. The next runtime finds it through runc's record and can delete it: it called the task
     * not created, while the bundle was in use by that container, and only a forced delete removed it.
     */
    @Test
    void aCreateOnATerminalEndedByARuntimeStopLeavesATaskTheNextRuntimeDeletes() throws Exception {
        Path handed = temp.resolve("console-socket");
        Path go = temp.resolve("go");
        runc = runc.withBinaryName(runcHeldAtConsole("after", handed, go).toString());
        Bundle bundle = bundle(true, "/bin/sh", "-c", "echo hi; sleep 600");
        ShimClient shim = warmShim(bundle);
        CompletableFuture<ProcessIo> created = shim.create(CreateOptions.of(Stdio.terminal(Flux.never(), SIZE)))
                .toFuture();
        awaitTrue(() -> Files.exists(handed));
        try {
            resources.close();
        } finally {
            Files.createFile(go);
        }
        StepVerifier.create(Mono.fromFuture(created)).expectError(UnavailableException.class).verify(TIMEOUT);
        assertThat(Leaks.runcContainers(runcRoot())).as("what runc create made").containsExactly(bundle.id());

        resources = new RuntimeResources("tty-test-reloaded-");
        runtime = new LinuxRuntime(config(), resources);
        ShimClient again = runtime.load(NS, bundle.id()).block(TIMEOUT)
                .newShimClient(ShimOpt.local(), runc).block(TIMEOUT);
        assertThat(again.state().block(TIMEOUT).pid()).as("the init runc recorded").isPositive();
        again.kill(9, true).onErrorResume(NotFoundException.class, gone -> Mono.empty()).block(TIMEOUT);
        again.awaitExit().block(TIMEOUT);
        again.delete().block(TIMEOUT);
        again.shutdown().block(TIMEOUT);
        assertThat(Leaks.openFds().values()).as("a master").noneMatch(target -> target.contains("ptmx"));
        assertNothingLeaks(bundle, Leaks.openFds());
    }

    @Test
    void aContainerOfTheSameIdFromAnotherBundleInTheRuncRootIsNotTakenForThisBundlesTask() throws Exception {
        Bundle bundle = bundle(false, "/bin/sleep", "600");
        ShimClient shim = warmShim(bundle);
        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        int pid = shim.start().block(TIMEOUT);
        Map<Integer, String> fdsBefore = Leaks.openFds();

        // Another state root given the same runc root, and a bundle of the same id there with no task of its own.
        RuntimeResources otherResources = new RuntimeResources("tty-test-other-");
        try {
            LinuxRuntime other = new LinuxRuntime(new RuntimeConfig(temp.resolve("other-state"),
                    temp.resolve("other-work")), otherResources);
            Bundle twin = other.create(NS, bundle.id(), Files.readAllBytes(bundle.path().resolve("config.json")))
                    .block(TIMEOUT);
            ShimClient stranger = twin.newShimClient(ShimOpt.local(), runc).block(TIMEOUT);
            StepVerifier.create(stranger.state()).expectError(NotFoundException.class).verify(TIMEOUT);
            StepVerifier.create(stranger.kill(9, true)).expectError(NotFoundException.class).verify(TIMEOUT);
            stranger.shutdown().block(TIMEOUT);
            twin.delete().block(TIMEOUT);
        } finally {
            otherResources.close();
        }

        assertThat(shim.state().block(TIMEOUT)).satisfies(state -> {
            assertThat(state.pid()).isEqualTo(pid);
            assertThat(state.status()).isEqualTo(TaskState.Status.RUNNING);
        });
        stop(shim);
        assertNothingLeaks(bundle, fdsBefore);
    }

    private String terminalLifecycle(ShimClient shim) {
        ProcessIo io = shim.create(CreateOptions.of(Stdio.terminal(Flux.never(), SIZE))).block(TIMEOUT);
        Mono<String> printed = text(io.stdout()).cache();
        printed.subscribe();
        shim.start().block(TIMEOUT);
        shim.awaitExit().block(TIMEOUT);
        shim.delete().block(TIMEOUT);
        return printed.block(TIMEOUT);
    }

    /**
     * The same for an exec, whose terminal comes with its start: the start fails and the process, which runc had
     * started, is ended. Its terminal's reader ends too: the master can no longer arrive, and it waited for one
     * until the exec was deleted (as after any failed start of an exec on a terminal).
     */
    @ParameterizedTest
    @ValueSource(strings = {"before", "after"})
    void anExecWhoseConsoleSocketSomeoneElseConnectedToFailsToStartAndItsReaderEnds(String when) throws Exception {
        Path handed = temp.resolve("console-socket");
        Path go = temp.resolve("go");
        runc = runc.withBinaryName(runcHeldAtConsole(when, handed, go).toString());
        Bundle bundle = bundle(false, "/bin/sleep", "600");
        ShimClient shim = warmShim(bundle);
        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        Map<Integer, String> fdsBefore = Leaks.openFds();
        ProcessIo io = shim.exec("e1", Spec.Process.builder().args("/bin/sh", "-c", "echo hi; sleep 600").build(),
                Stdio.terminal(Flux.never(), SIZE)).block(TIMEOUT);
        Mono<String> printed = text(io.stdout()).cache();
        printed.subscribe(text -> {}, error -> {});

        CompletableFuture<Integer> started = shim.start("e1").toFuture();
        awaitTrue(() -> Files.exists(handed));
        ConsoleIntruder.passATerminalOfItsOwn(Path.of(Files.readString(handed).strip()));
        Files.createFile(go);

        StepVerifier.create(Mono.fromFuture(started))
                .expectErrorSatisfies(error -> assertThat(error)
                        .hasMessageContaining("more than one process connected to the console socket"))
                .verify(TIMEOUT);
        // Nothing of the process could be read: runc's terminal was never taken.
        assertThat(printed.block(TIMEOUT)).isEmpty();
        shim.awaitExit("e1").block(TIMEOUT);
        shim.delete("e1").block(TIMEOUT);
        stop(shim);
        assertNothingLeaks(bundle, fdsBefore);
    }

    /**
     * An exec on a terminal deleted without a start: its master can never come, so the delete waits for no end of
     * its output, and its reader ends. The delete waited the whole allowance for output after an exit
     * ({@link TaskProcess#DRAIN_TIMEOUT}) for a terminal that could not end.
     */
    @Test
    void anExecOnATerminalDeletedUnstartedEndsItsReaderAtOnce() throws Exception {
        Bundle bundle = bundle(false, "/bin/sleep", "600");
        ShimClient shim = warmShim(bundle);
        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        Map<Integer, String> fdsBefore = Leaks.openFds();
        ProcessIo io = shim.exec("e1", Spec.Process.builder().args("/bin/sh").build(),
                Stdio.terminal(Flux.never(), SIZE)).block(TIMEOUT);
        Mono<String> printed = text(io.stdout()).cache();
        printed.subscribe(text -> {}, error -> {});

        long deleting = System.nanoTime();
        shim.delete("e1").block(TIMEOUT);

        assertThat(Duration.ofNanos(System.nanoTime() - deleting))
                .isLessThan(TaskProcess.DRAIN_TIMEOUT);
        assertThat(printed.block(TIMEOUT)).isEmpty();
        stop(shim);
        assertNothingLeaks(bundle, fdsBefore);
    }

    @Test
    void concurrentResizesAllLandAndTheLastOneHolds() throws Exception {
        Bundle bundle = bundle(true, "/bin/sh");
        ShimClient shim = warmShim(bundle);
        Map<Integer, String> fdsBefore = Leaks.openFds();
        Session session = new Session();
        session.read(shim.create(CreateOptions.of(Stdio.terminal(session.keys(), SIZE))).block(TIMEOUT));
        shim.start().block(TIMEOUT);

        Flux.range(1, 200).flatMap(i -> shim.resize(ShimClient.INIT, new TerminalSize(50 + i, 10 + i % 40)), 16)
                .then().block(TIMEOUT);
        shim.resize(ShimClient.INIT, new TerminalSize(77, 33)).block(TIMEOUT);
        int mark = session.type("busybox stty size\n");
        session.await(mark, "\\r\\n33 77\\r\\n");

        session.type("exit\n");
        shim.awaitExit().block(TIMEOUT);
        session.awaitEnd();
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
        assertNothingLeaks(bundle, fdsBefore);
    }

    @Test
    void aSubscriberThatStopsRequestingBlocksTheProcessAndOneThatCancelsDoesNot() throws Exception {
        Bundle bundle = bundle(true, "/bin/sh", "-c", "i=0; while true; do echo line-$i; i=$((i+1)); done");
        ShimClient shim = warmShim(bundle);
        Map<Integer, String> fdsBefore = Leaks.openFds();
        ProcessIo io = shim.create(CreateOptions.of(Stdio.terminal(null, SIZE))).block(TIMEOUT);
        AtomicInteger chunks = new AtomicInteger();
        BaseSubscriber<byte[]> slow = new BaseSubscriber<>() {
            @Override
            protected void hookOnSubscribe(Subscription subscription) {
                request(1);
            }

            @Override
            protected void hookOnNext(byte[] chunk) {
                chunks.incrementAndGet();
            }
        };
        io.stdout().subscribe(slow);
        Path count = Path.of("/proc", Integer.toString(shim.start().block(TIMEOUT)), "io");

        // One chunk asked for, one read: the rest waits in the terminal, whose full buffer stops the writer.
        long stalledAt = awaitStalled(count);
        assertThat(chunks.get()).isEqualTo(1);
        slow.request(Long.MAX_VALUE);
        awaitTrue(() -> counter(count) > stalledAt + 100_000);
        // A subscriber that goes away is no reason for the process to stop: its output is dropped now.
        slow.cancel();
        long cancelledAt = counter(count);
        awaitTrue(() -> counter(count) > cancelledAt + 100_000);

        stop(shim);
        assertNothingLeaks(bundle, fdsBefore);
    }

    @Test
    void stoppingThePluginMidwayEndsTheOutputAndClosesTheMaster() throws Exception {
        Bundle bundle = bundle(true, "/bin/sh");
        ShimClient shim = warmShim(bundle);
        Session session = new Session();
        session.read(shim.create(CreateOptions.of(Stdio.terminal(session.keys(), SIZE))).block(TIMEOUT));
        shim.start().block(TIMEOUT);
        int mark = session.type("busybox tty\n");
        session.await(mark, "/dev/pts/\\d+");
        assertThat(Leaks.openFds().values()).as("the master, held").anyMatch(target -> target.contains("ptmx"));

        resources.close();

        // The process may run on (see ContainerTerminalTest#aReaderOfATerminalLearnsThatThePluginStopped...): the
        // reader learns that the runtime stopped, not that the output ended.
        assertThatThrownBy(session::awaitEnd).isInstanceOf(UnavailableException.class)
                .hasMessageContaining("the runtime stopped");
        assertThat(Leaks.openFds().values()).as("the master, closed").noneMatch(target -> target.contains("ptmx"));
        // The runtime held the terminal, as a shim does: closing it hung up the shell, as a terminal closed under a
        // shell does (busybox sh then exits 0 or 2, depending on where the hang-up finds it). A new runtime learns
        // that exit.
        resources = new RuntimeResources("tty-test-reloaded-");
        runtime = new LinuxRuntime(config(), resources);
        ShimClient again = runtime.load(NS, bundle.id()).block(TIMEOUT)
                .newShimClient(ShimOpt.local(), runc).block(TIMEOUT);
        assertThat(again.awaitExit().block(TIMEOUT).status()).isIn(0, 2);
        again.delete().block(TIMEOUT);
        again.shutdown().block(TIMEOUT);
        assertThat(workFiles(bundle)).as("console sockets left").noneMatch(f -> f.contains("console-"));
        assertThat(Leaks.runcContainers(runcRoot())).isEmpty();
        awaitTrue(() -> Zombies.ofThisJvm().isEmpty());
    }

    /**
     * An exec made with a terminal but not started: its master comes only with runc exec, so nothing of it is on
     * the poll loop yet. A plugin stop then ends its reader with UnavailableException, as it does a FIFO's (read
     * from the exec's make on); the reader heard nothing and waited for good.
     */
    @Test
    void aReaderOfAnExecsTerminalThatNeverArrivedLearnsThatThePluginStopped() throws Exception {
        Bundle bundle = bundle(false, "/bin/sleep", "600");
        ShimClient shim = warmShim(bundle);
        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        Session session = new Session();
        session.read(shim.exec("sh1", Spec.Process.builder().args("/bin/sh").build(),
                Stdio.terminal(session.keys(), SIZE)).block(TIMEOUT));

        resources.close();

        assertThatThrownBy(session::awaitEnd).isInstanceOf(UnavailableException.class)
                .hasMessageContaining("the runtime stopped");
        // A reader that comes after the stop learns the same (and only one reader is ever taken).
        StepVerifier.create(shim.exec("sh2", Spec.Process.builder().args("/bin/sh").build(),
                Stdio.terminal(Flux.never(), SIZE))).expectError(UnavailableException.class).verify(TIMEOUT);
        resources = new RuntimeResources("tty-test-reloaded-");
        runtime = new LinuxRuntime(config(), resources);
        ShimClient again = runtime.load(NS, bundle.id()).block(TIMEOUT)
                .newShimClient(ShimOpt.local(), runc).block(TIMEOUT);
        stop(again);
        // The new runtime never knew sh1: its spec and console socket go with the bundle.
        runtime.delete(bundle.namespace(), bundle.id()).block(TIMEOUT);
        assertThat(bundle.workDir()).doesNotExist();
        assertThat(Leaks.openFds().values()).as("a master").noneMatch(target -> target.contains("ptmx"));
        assertThat(Leaks.runcContainers(runcRoot())).isEmpty();
        assertThat(Leaks.awaitNoProcessesOf(temp, bundle.id(), Duration.ofSeconds(10))).as("processes left")
                .isEmpty();
        awaitTrue(() -> Zombies.ofThisJvm().isEmpty());
    }

    // ---- helpers

    /**
     * runc itself, but stopping at a terminal's launch (create or exec), before runc runs or after it exited
     * ({@code when}), until the test had its turn on the socket: its path is written to {@code handed}, and runc
     * goes on once {@code go} exists.
     */
    private Path runcHeldAtConsole(String when, Path handed, Path go) throws Exception {
        String real = Processes.run(null, "sh", "-c", "command -v runc").strip();
        Path script = temp.resolve("runc-held-at-console");
        Files.writeString(script, """
                #!/bin/sh
                socket=
                prev=
                for arg in "$@"; do
                    [ "$prev" = --console-socket ] && socket=$arg
                    prev=$arg
                done
                [ -z "$socket" ] && exec %1$s "$@"
                hand() {
                    echo "$socket" > %2$s.tmp && mv %2$s.tmp %2$s
                    while [ ! -e %3$s ]; do sleep 0.01; done
                }
                if [ %4$s = before ]; then hand; exec %1$s "$@"; fi
                %1$s "$@"
                status=$?
                hand
                exit $status
                """.formatted(real, handed, go, when));
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
        return script;
    }

    /** A shim of {@code bundle}, once another container's lifecycle opened what lives as long as the runtime. */
    private ShimClient warmShim(Bundle bundle) throws Exception {
        ShimClient warm = shim(bundle(false, "/bin/true"));
        warm.create(CreateOptions.of(Stdio.streams(null))).block(TIMEOUT);
        warm.start().block(TIMEOUT);
        warm.awaitExit().block(TIMEOUT);
        warm.delete().block(TIMEOUT);
        warm.shutdown().block(TIMEOUT);
        return shim(bundle);
    }

    private ShimClient shim(Bundle bundle) {
        return bundle.newShimClient(ShimOpt.local(), runc).block(TIMEOUT);
    }

    private void stop(ShimClient shim) {
        shim.kill(9, true).block(TIMEOUT);
        shim.awaitExit().block(TIMEOUT);
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
    }

    private Bundle bundle(boolean terminal, String... args) throws Exception {
        return bundle(process(terminal, args));
    }

    /** A busybox container's process running {@code args}, with a terminal or not. */
    private ObjectNode process(boolean terminal, String... args) throws Exception {
        ObjectNode spec = (ObjectNode) JSON.readTree(BusyboxBundle.spec(Files.createDirectories(temp.resolve("specs")),
                args));
        ObjectNode process = (ObjectNode) spec.get("process");
        process.put("terminal", terminal);
        ArrayNode env = process.putArray("env");
        env.add("PATH=/bin");
        env.add("TERM=xterm");
        return process;
    }

    private Bundle bundle(ObjectNode process) throws Exception {
        return bundle(process, "t-" + UUID.randomUUID().toString().substring(0, 8));
    }

    private Bundle bundle(ObjectNode process, String id) throws Exception {
        ObjectNode spec = (ObjectNode) JSON.readTree(BusyboxBundle.spec(Files.createDirectories(temp.resolve("specs")),
                "/bin/true"));
        spec.set("process", process);
        Bundle bundle = runtime.create(NS, id, JSON.writeValueAsBytes(spec)).block(TIMEOUT);
        BusyboxBundle.writeRootfs(bundle.rootfs());
        return bundle;
    }

    private Path runcRoot() {
        return Path.of(runc.runtimeRoot()).resolve(NS);
    }

    /** Every path under the bundle's work directory, where its console sockets and FIFOs are made. */
    private static List<String> workFiles(Bundle bundle) throws IOException {
        try (Stream<Path> files = Files.walk(bundle.workDir())) {
            return files.map(Path::toString).toList();
        }
    }

    private void assertNothingLeaks(Bundle bundle, Map<Integer, String> fdsBefore) throws Exception {
        assertThat(workFiles(bundle)).as("console sockets or FIFOs left").noneMatch(f -> f.contains("console-")
                || f.contains("-stdout") || f.contains("-stdin"));
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5))).as("descriptors left open").isEmpty();
        assertThat(Zombies.awaitNone(Duration.ofSeconds(5))).as("zombie children of the JVM").isEmpty();
        assertThat(Leaks.runcContainers(runcRoot())).as("runc containers").isEmpty();
        assertThat(Leaks.awaitNoProcessesOf(temp, bundle.id(), Duration.ofSeconds(10))).as("processes left")
                .isEmpty();
        runtime.delete(bundle.namespace(), bundle.id()).block(TIMEOUT);
    }

    private static Mono<String> text(Flux<byte[]> chunks) {
        return chunks.map(bytes -> new String(bytes, UTF_8)).reduce("", String::concat);
    }

    /**
     * Waits until a job other than the shell is the terminal's foreground process group: what is typed now goes
     * to it, in the mode it set. Polled: /proc is the only place that says so.
     */
    private static void awaitForegroundJob(ShimClient shim, int shellPid) throws InterruptedException {
        awaitTrue(() -> shim.pids().collectList().block(TIMEOUT).stream().map(ProcessInfo::pid)
                .filter(pid -> pid != shellPid).anyMatch(LocalTerminalTest::leadsTheForeground));
    }

    private static boolean leadsTheForeground(int pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Integer.toString(pid), "stat"));
            // After "(comm) ": state ppid pgrp session tty_nr tpgid.
            String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return fields[2].equals(Integer.toString(pid)) && fields[5].equals(fields[2]);
        } catch (IOException gone) {
            return false;
        }
    }

    /** The bytes the writer wrote, once they stopped growing: polled, /proc is the only witness. */
    private static long awaitStalled(Path count) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        long last = -1;
        int still = 0;
        while (System.nanoTime() < deadline) {
            long now = counter(count);
            still = now == last && now > 0 ? still + 1 : 0;
            if (still == 10) {
                return now;
            }
            last = now;
            Thread.sleep(50);
        }
        throw new AssertionError("the writer never stalled; last count " + last);
    }

    /** {@code wchar} of a process's {@code /proc/<pid>/io}: the bytes it has written so far. */
    private static long counter(Path io) {
        try {
            return Files.readAllLines(io).stream().filter(line -> line.startsWith("wchar:"))
                    .mapToLong(line -> Long.parseLong(line.substring(6).strip())).findFirst().orElse(0);
        } catch (IOException gone) {
            return 0;
        }
    }

    private static void awaitTrue(BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!condition.getAsBoolean() && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertThat(condition.getAsBoolean()).as("condition within " + TIMEOUT).isTrue();
    }

    /** One terminal as a person at a keyboard sees it: what was typed, and what the screen shows so far. */
    private static final class Session {
        private final Sinks.Many<byte[]> keys = Sinks.many().unicast().onBackpressureBuffer();
        private final StringBuffer screen = new StringBuffer();
        private final Sinks.Many<String> screens = Sinks.many().replay().latest();
        private final Sinks.Empty<Void> ended = Sinks.empty();
        private Disposable reading;

        Flux<byte[]> keys() {
            return keys.asFlux();
        }

        void read(ProcessIo io) {
            read(io.stdout());
        }

        void read(Flux<byte[]> output) {
            reading = output.subscribe(chunk -> {
                synchronized (screen) {
                    screen.append(new String(chunk, UTF_8));
                    screens.tryEmitNext(screen.toString());
                }
            }, ended::tryEmitError, ended::tryEmitEmpty);
        }

        /** Types {@code text}; returns where the screen was, to look for the answer after it. */
        int type(String text) {
            int mark = screen.length();
            assertThat(keys.tryEmitNext(text.getBytes(UTF_8)).isSuccess()).isTrue();
            return mark;
        }

        void await(int mark, String regex) {
            await(mark, regex, TIMEOUT);
        }

        void await(int mark, String regex, Duration within) {
            Pattern pattern = Pattern.compile(regex);
            String found = screens.asFlux().filter(text -> pattern.matcher(text.substring(Math.min(mark,
                    text.length()))).find()).blockFirst(within);
            assertThat(found).as("screen after typing, looking for " + regex).isNotNull();
        }

        /** The output ended: every holder of the terminal closed it. */
        void awaitEnd() {
            ended.asMono().block(TIMEOUT);
            reading.dispose();
        }
    }
}
