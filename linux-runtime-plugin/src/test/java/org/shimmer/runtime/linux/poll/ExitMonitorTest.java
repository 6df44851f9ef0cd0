package org.shimmer.runtime.linux.poll;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.sys.Bell;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.shimmer.runtime.linux.testing.Zombies;
import org.shimmer.runtime.shim.ExitStatus;
import reactor.core.publisher.Mono;
import reactor.test.StepVerifier;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * The exit monitor on a real poll loop, with real children: adopted ones (the JVM is a subreaper here), one in a
 * nested pid namespace, and the JDK's own.
 */
class ExitMonitorTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(10);
    private static final Signal CHLD = new Signal("CHLD");
    private static final long SELF = ProcessHandle.current().pid();

    @TempDir
    Path temp;

    private PollLoop loop;
    private ExecutorService emitter;
    private ExitMonitor monitor;
    private Process namespace;
    private Process nsLauncher;
    private int nsInit;

    @BeforeEach
    void setUp() throws IOException {
        loop = new PollLoop("exit-monitor-test-poll");
        emitter = Executors.newSingleThreadExecutor();
        monitor = new ExitMonitor(loop, emitter);
    }

    @AfterEach
    void tearDown() throws Exception {
        endNamespace();
        monitor.close();
        loop.close();
        emitter.shutdown();
        assertThat(loop.isAlive()).as("poll thread alive").isFalse();
        assertThat(loop.registrations()).as("poll registrations left").isZero();
        assertThat(Zombies.awaitNone(Duration.ofSeconds(5))).as("zombie children of the JVM").isEmpty();
    }

    @Test
    void anIdleMonitorReadsNoProcessStatus() throws Exception {
        monitor.adoptOrphans();
        awaitLoopTurn();
        long reads = monitor.statusReads();

        // Nothing to signal here: the claim is that nothing happens over time, so time passes.
        Thread.sleep(2_000);

        assertThat(monitor.statusReads()).as("/proc/<pid>/status reads while idle").isEqualTo(reads);
    }

    @Test
    void anOrphanInANestedPidNamespaceIsReapedWhenItsSigchldArrives() throws Exception {
        monitor.adoptOrphans();
        int orphan = adoptNestedOrphan();
        long reads = monitor.statusReads();

        release();

        long exited = System.nanoTime();
        await(() -> !Files.exists(Path.of("/proc", Integer.toString(orphan))), "the orphan reaped");
        assertThat(Duration.ofNanos(System.nanoTime() - exited)).as("time to reap").isLessThan(Duration.ofSeconds(1));
        assertThat(monitor.statusReads()).as("status reads of the scan").isGreaterThan(reads);
    }

    @Test
    void aLaunchHoldsOrphanReapingBackUntilItEndsHoweverOftenItIsClosed() throws Exception {
        monitor.adoptOrphans();
        int orphan = adoptNestedOrphan();
        ExitMonitor.Launch launch = monitor.launch();
        Path entry = Path.of("/proc", Integer.toString(orphan));

        release();

        await(() -> Zombies.ofThisJvm().contains(orphan), "the orphan a zombie");
        awaitLoopTurn();
        assertThat(Files.exists(entry)).as("orphan reaped while a launch, which may own it, is in flight").isTrue();

        // No SIGCHLD comes any more: ending the launch itself must have the orphans looked for again. A cancelled
        // operation may end its launch from two paths; the second close is harmless.
        launch.close();
        launch.close();

        await(() -> !Files.exists(entry), "the orphan reaped once the launch ended");
    }

    @Test
    void processBuilderChildrenKeepTheirExitCodesWhileOrphansAreAdopted() throws Exception {
        monitor.adoptOrphans();

        for (int i = 0; i < 20; i++) {
            Process child = new ProcessBuilder("sh", "-c", "exit 7").start();
            assertThat(child.waitFor()).as("exit code of run " + i).isEqualTo(7);
        }

        SignalHandler current = Signal.handle(CHLD, SignalHandler.SIG_DFL);
        Signal.handle(CHLD, current);
        assertThat(current).as("the SIGCHLD handler after the JDK started processes")
                .isNotIn(SignalHandler.SIG_DFL, SignalHandler.SIG_IGN);
    }

    @Test
    void twentyConcurrentWatchesOfOnePidShareOnePidfdAndTheRealStatus() throws Exception {
        monitor.adoptOrphans();
        awaitLoopTurn();
        int registrations = loop.registrations();
        Process launcher = waitingChild(42);
        try {
            int pid = Integer.parseInt(firstLine(launcher));
            assertThat(launcher.waitFor()).isZero();
            await(() -> Zombies.parentOf(pid) == SELF, "the child adopted by the JVM");

            List<Mono<ExitStatus>> exits = new ArrayList<>();
            ExecutorService watchers = Executors.newFixedThreadPool(20);
            try {
                CountDownLatch start = new CountDownLatch(1);
                List<Future<Mono<ExitStatus>>> watches = new ArrayList<>();
                for (int i = 0; i < 20; i++) {
                    watches.add(watchers.submit(() -> {
                        start.await();
                        return monitor.watch(pid);
                    }));
                }
                start.countDown();
                for (Future<Mono<ExitStatus>> watch : watches) {
                    exits.add(watch.get(10, TimeUnit.SECONDS));
                }
            } finally {
                watchers.shutdownNow();
            }
            assertThat(loop.registrations()).as("pidfds registered for one pid").isEqualTo(registrations + 1);

            release();

            for (Mono<ExitStatus> exit : exits) {
                assertThat(exit.block(TIMEOUT).status()).isEqualTo(42);
            }
            await(() -> loop.registrations() == registrations, "the pidfd deregistered");
        } finally {
            releaseAnyWaiting();
            launcher.getInputStream().close();
        }
    }

    @Test
    void closeRestoresTheSigchldHandlerAndFailsWatchesWithoutAnExit() throws Exception {
        SignalHandler before = sig -> {};
        SignalHandler original = Signal.handle(CHLD, before);
        Process launcher = null;
        int pid = -1;
        try {
            monitor.adoptOrphans();
            SignalHandler installed = Signal.handle(CHLD, SignalHandler.SIG_DFL);
            Signal.handle(CHLD, installed);
            assertThat(installed).as("handler while adopting").isNotSameAs(before);
            launcher = waitingChild(3);
            int child = Integer.parseInt(firstLine(launcher));
            pid = child;
            assertThat(launcher.waitFor()).isZero();
            await(() -> Zombies.parentOf(child) == SELF, "the child adopted by the JVM");
            Mono<ExitStatus> exit = monitor.watch(child);

            monitor.close();
            loop.close();

            StepVerifier.create(exit).expectError(UnavailableException.class).verify(TIMEOUT);
            assertThat(loop.isAlive()).as("poll thread alive").isFalse();
            assertThat(Signal.handle(CHLD, original)).as("handler after close").isSameAs(before);
        } finally {
            Signal.handle(CHLD, original);
            if (launcher != null) {
                launcher.getInputStream().close();
            }
            if (pid > 0) {
                release();
                // Nobody watches it any more: it is ours to reap.
                assertThat(LinuxCalls.waitPid(pid, LinuxCalls.WEXITED).status()).isEqualTo(3);
            }
        }
    }

    /**
     * A watched process killed while another process was its parent, one that never reaps it: its exit is reported
     * at once, and once its parent dies the subreaper JVM inherits the zombie, which is reaped then (a shim daemon
     * killed while its {@code shim start} still ran was left a zombie of the JVM for good).
     */
    @Test
    void aWatchedProcessKilledUnderAnotherParentIsReapedOnceTheJvmInheritsIt() throws Exception {
        monitor.adoptOrphans();
        Process parent = nonReapingParent();
        try {
            int stray = Integer.parseInt(firstLine(parent));
            assertThat(Zombies.parentOf(stray)).as("parent of the watched process").isEqualTo(parent.pid());
            awaitExecOf(parent);
            Mono<Void> gone = monitor.watchAny(stray);

            LinuxCalls.kill(stray, 9);

            StepVerifier.create(gone).expectComplete().verify(TIMEOUT);
            await(() -> isZombie(stray), "the killed process a zombie of its parent");
            awaitLoopTurn();
            assertThat(Zombies.parentOf(stray)).as("its parent, after the exit was reported").isEqualTo(parent.pid());
            assertThat(monitor.strays()).as("exited processes kept to reap").isOne();

            parent.destroyForcibly();
            assertThat(parent.waitFor(10, TimeUnit.SECONDS)).isTrue();

            Path entry = Path.of("/proc", Integer.toString(stray));
            await(() -> !Files.exists(entry), "the inherited zombie reaped");
            await(() -> monitor.strays() == 0, "the stray let go");
        } finally {
            parent.destroyForcibly();
            parent.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /**
     * After a plugin reload the JVM is still a subreaper (the flag is process-wide), but the new runtime's monitor
     * never adopted orphans if it runs remote shims only: a process it watches that the JVM inherits after its exit
     * is reaped all the same (review: it was let go at once and stayed a zombie for good).
     */
    @Test
    void aMonitorThatNeverAdoptedReapsWhatASubreaperJvmInherits() throws Exception {
        ExitMonitor before = new ExitMonitor(loop, emitter);
        before.adoptOrphans();
        before.close();
        assertThat(LinuxCalls.isChildSubreaper()).as("the JVM a subreaper after that runtime stopped").isTrue();
        Process parent = nonReapingParent();
        try {
            int stray = Integer.parseInt(firstLine(parent));
            awaitExecOf(parent);
            Mono<Void> gone = monitor.watchAny(stray);

            LinuxCalls.kill(stray, 9);
            StepVerifier.create(gone).expectComplete().verify(TIMEOUT);
            parent.destroyForcibly();
            assertThat(parent.waitFor(10, TimeUnit.SECONDS)).isTrue();

            Path entry = Path.of("/proc", Integer.toString(stray));
            await(() -> !Files.exists(entry), "the inherited zombie reaped");
        } finally {
            parent.destroyForcibly();
            parent.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /**
     * A watched process killed under a parent that reaps it: the monitor lets its pidfd go at its next look (here
     * the exit of a child of the JVM), and never reaps anything else in its place.
     */
    @Test
    void aStrayThatItsOwnParentReapedIsLetGo() throws Exception {
        monitor.adoptOrphans();
        Path done = temp.resolve("reaped");
        // The shell waits for the sleep, so it reaps it; then it stays until we end it. The marker is the shell's own
        // redirection, not a touch: a child of the shell still exiting when we kill the shell would be left to the
        // JVM (a subreaper) after this monitor closed, a zombie for the next test to find.
        Process parent = new ProcessBuilder("sh", "-c", "sleep 60 & echo $!; wait; : > " + done + "; exec sleep 60")
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile())).start();
        try {
            int stray = Integer.parseInt(firstLine(parent));
            int registrations = loop.registrations();
            Mono<Void> gone = monitor.watchAny(stray);

            LinuxCalls.kill(stray, 9);

            StepVerifier.create(gone).expectComplete().verify(TIMEOUT);
            await(() -> Files.exists(done), "the parent reaped it");
            // Any SIGCHLD makes the monitor look again.
            Process child = new ProcessBuilder("true").start();
            assertThat(child.waitFor()).as("exit code of a JDK child meanwhile").isZero();
            await(() -> monitor.strays() == 0, "the stray let go");
            await(() -> loop.registrations() == registrations, "its pidfd closed");
        } finally {
            parent.destroyForcibly();
            parent.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /**
     * A process in a nested pid namespace (not its init) that the JVM adopted and nobody watches, waiting on the
     * gate: what a container leaves to the runtime. The namespace's init stays (unshare, a JDK child, is its
     * parent); nsenter joins it and forks the process, the JVM adopts nsenter when the launching shell exits, and
     * the nested process when we kill nsenter (reaped through a watch).
     */
    private int adoptNestedOrphan() throws Exception {
        namespace = new ProcessBuilder("unshare", "--pid", "--fork", "sleep", "60").start();
        nsInit = awaitOnlyChild(namespace.pid());
        nsLauncher = new ProcessBuilder("sh", "-c", "nsenter -t " + nsInit + " -p -- sh -c 'read line < " + gate()
                + "; exit 5' & echo $!")
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile())).start();
        int nsenter = Integer.parseInt(firstLine(nsLauncher));
        assertThat(nsLauncher.waitFor()).isZero();
        await(() -> Zombies.parentOf(nsenter) == SELF, "nsenter adopted by the JVM");
        int nested = awaitOnlyChild(nsenter);
        Mono<ExitStatus> nsenterExit = monitor.watch(nsenter);
        assertThat(monitor.signal(nsenter, 9)).isTrue();
        assertThat(nsenterExit.block(TIMEOUT).status()).isEqualTo(137);
        await(() -> Zombies.parentOf(nested) == SELF, "the nested process adopted by the JVM");
        assertThat(nsPidDepth(nested)).as("pid namespaces of the orphan").isEqualTo(2);
        return nested;
    }

    /** Ends the namespace of {@link #adoptNestedOrphan()}, if a test made one. */
    private void endNamespace() throws Exception {
        if (nsLauncher != null) {
            nsLauncher.getInputStream().close();
        }
        if (namespace != null) {
            ProcessHandle.of(nsInit).ifPresent(ProcessHandle::destroyForcibly);
            assertThat(namespace.waitFor(10, TimeUnit.SECONDS)).as("namespace holder ended").isTrue();
        }
    }

    /**
     * A child the JVM adopts (its shell exits at once) that exits with {@code status} once {@link #release}d. A FIFO,
     * not the shell's stdin: the JDK closes a child's stdin pipe as soon as that child (the shell) exits.
     */
    private Process waitingChild(int status) throws IOException {
        return new ProcessBuilder("sh", "-c", "(read line < " + gate() + "; exit " + status + ") & echo $!")
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile())).start();
    }

    /** The FIFO a waiting child reads, made on first use. */
    private Path gate() throws IOException {
        Path gate = temp.resolve("gate");
        if (!Files.exists(gate)) {
            LinuxCalls.mkfifo(gate, 0600);
        }
        return gate;
    }

    /** Lets every child waiting on the gate go: they read end of file. Waits for a reader to come. */
    private void release() throws IOException {
        new FileOutputStream(gate().toFile()).close();
    }

    /** {@link #release()} if a child waits now; for cleanup after a failure, so it never blocks. */
    private void releaseAnyWaiting() throws IOException {
        try {
            OwnedFd.open(gate(), LinuxCalls.O_WRONLY | LinuxCalls.O_NONBLOCK | LinuxCalls.O_CLOEXEC).close();
        } catch (LinuxCalls.ErrnoException noReader) {
            assertThat(noReader.errno()).isEqualTo(LinuxCalls.ENXIO);
        }
    }

    /** The first line a process prints; its output pipe stays open in the background child. */
    private static String firstLine(Process process) throws IOException {
        return new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))
                .readLine().strip();
    }

    /** Returns once the loop has handled everything rung before: a registration rung now is dispatched after. */
    private void awaitLoopTurn() throws Exception {
        CountDownLatch turned = new CountDownLatch(1);
        OwnedFd eventfd = OwnedFd.eventfd();
        loop.register(eventfd, (self, revents) -> {
            // Closed first, so the count is settled when the caller wakes.
            self.close();
            turned.countDown();
        });
        new Bell(eventfd).ring();
        assertThat(turned.await(5, TimeUnit.SECONDS)).as("a loop turn").isTrue();
    }

    private static int awaitOnlyChild(long pid) throws Exception {
        Path children = Path.of("/proc", Long.toString(pid), "task", Long.toString(pid), "children");
        await(() -> {
            try {
                return !Files.readString(children).isBlank();
            } catch (IOException gone) {
                return false;
            }
        }, "a child of " + pid);
        return Integer.parseInt(Files.readString(children).strip().split(" ")[0]);
    }

    /**
     * A shell that forks a sleep, prints its pid and then becomes a sleep itself, which never reaps it: the parent
     * of a process we watch but may not reap.
     */
    private static Process nonReapingParent() throws IOException {
        return new ProcessBuilder("sh", "-c", "sleep 60 & echo $!; exec sleep 60")
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile())).start();
    }

    /** Until its exec the shell of {@link #nonReapingParent()} may still reap its job when SIGCHLD comes. */
    private static void awaitExecOf(Process parent) throws InterruptedException {
        Path comm = Path.of("/proc", Long.toString(parent.pid()), "comm");
        await(() -> {
            try {
                return Files.readString(comm).strip().equals("sleep");
            } catch (IOException gone) {
                return false;
            }
        }, "the shell replaced by sleep");
    }

    private static boolean isZombie(int pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Integer.toString(pid), "stat"));
            return stat.substring(stat.lastIndexOf(')') + 2).startsWith("Z");
        } catch (IOException gone) {
            return false;
        }
    }

    private static int nsPidDepth(int pid) throws IOException {
        return Files.readAllLines(Path.of("/proc", Integer.toString(pid), "status")).stream()
                .filter(line -> line.startsWith("NSpid:"))
                .findFirst().orElseThrow().substring(6).strip().split("\\s+").length;
    }

    /** Polls external state (/proc) that has no signal, up to a deadline. */
    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!condition.getAsBoolean()) {
            assertThat(System.nanoTime()).as("waiting for " + what).isLessThan(deadline);
            Thread.sleep(5);
        }
    }
}
