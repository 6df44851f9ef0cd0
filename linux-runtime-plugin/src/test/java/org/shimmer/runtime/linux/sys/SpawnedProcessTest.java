package org.shimmer.runtime.linux.sys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.linux.testing.Zombies;

/**
 * Children started through posix_spawn behave as the JDK's: streams, exit statuses, waits, signals; and leave
 * nothing: no zombie, no descriptor of ours in the child or left open in the JVM.
 */
@SuppressWarnings("restricted")
class SpawnedProcessTest {

    private static final ProcessBuilder.Redirect NULL_IN =
            ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile());

    @TempDir
    Path dir;

    private Map<Integer, String> fdsBefore;

    @BeforeEach
    void noteDescriptors() {
        assertThat(PosixSpawn.AVAILABLE).as("glibc's posix_spawn with addclosefrom_np").isTrue();
        fdsBefore = Leaks.openFds();
    }

    @AfterEach
    void nothingLeft() throws Exception {
        assertThat(Zombies.awaitNone(Duration.ofSeconds(5))).isEmpty();
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5))).isEmpty();
    }

    @Test
    void aPipedChildsOutputAndExitStatusArriveAsFromTheJdk() throws Exception {
        Process child = start(List.of("sh", "-c", "printf 'out put'; exit 7"), NULL_IN,
                ProcessBuilder.Redirect.PIPE, ProcessBuilder.Redirect.DISCARD);
        assertThat(child).isInstanceOf(SpawnedProcess.class);
        try (InputStream out = child.getInputStream()) {
            assertThat(new String(out.readAllBytes(), StandardCharsets.UTF_8)).isEqualTo("out put");
        }
        assertThat(child.waitFor()).isEqualTo(7);
        assertThat(child.exitValue()).isEqualTo(7);
        assertThat(child.isAlive()).isFalse();
    }

    @Test
    void aChildKilledByASignalExitsWith128PlusIt() throws Exception {
        Process child = start(List.of("sleep", "30"), NULL_IN, ProcessBuilder.Redirect.DISCARD,
                ProcessBuilder.Redirect.DISCARD);
        assertThat(child.isAlive()).isTrue();
        assertThatThrownBy(child::exitValue).isInstanceOf(IllegalThreadStateException.class);
        assertThat(child.waitFor(50, TimeUnit.MILLISECONDS)).isFalse();
        child.destroy();
        assertThat(child.waitFor()).isEqualTo(128 + 15);
        Process forced = start(List.of("sleep", "30"), NULL_IN, ProcessBuilder.Redirect.DISCARD,
                ProcessBuilder.Redirect.DISCARD);
        assertThat(forced.destroyForcibly().waitFor()).isEqualTo(128 + 9);
    }

    @Test
    void fileRedirectsReadTruncateAndAppendAsTheJdksDo() throws Exception {
        Path input = Files.writeString(dir.resolve("in"), "from a file\n");
        Path truncated = Files.writeString(dir.resolve("truncated"), "old content that is longer\n");
        Path appended = Files.writeString(dir.resolve("appended"), "kept\n");
        Process child = start(List.of("sh", "-c", "cat; echo err >&2"), ProcessBuilder.Redirect.from(input.toFile()),
                ProcessBuilder.Redirect.to(truncated.toFile()), ProcessBuilder.Redirect.appendTo(appended.toFile()));
        assertThat(child.waitFor()).isZero();
        assertThat(Files.readString(truncated)).isEqualTo("from a file\n");
        assertThat(Files.readString(appended)).isEqualTo("kept\nerr\n");
        Path created = dir.resolve("created");
        assertThat(start(List.of("echo", "new"), NULL_IN, ProcessBuilder.Redirect.to(created.toFile()),
                ProcessBuilder.Redirect.DISCARD).waitFor()).isZero();
        assertThat(Files.readString(created)).isEqualTo("new\n");
    }

    @Test
    void theChildGetsOnlyItsThreeDescriptorsAndNoBlockedSignal() throws Exception {
        // A descriptor of the JVM opened without close-on-exec must not reach the child either.
        int inheritable = LinuxCalls.open(dir, LinuxCalls.O_RDONLY);
        try {
            // Spawned from a thread that blocks SIGUSR1 and SIGTERM: the child must not inherit that.
            String[] printedBox = new String[1];
            Throwable[] failure = new Throwable[1];
            Thread spawner = Thread.ofPlatform().start(() -> {
                try {
                    blockSignals(10, 15);
                    // Straight to the programs: a shell clears its signal mask as it starts.
                    StringBuilder printed = new StringBuilder();
                    for (List<String> command : List.of(List.of("ls", "/proc/self/fd"),
                            List.of("grep", "^SigBlk", "/proc/self/status"))) {
                        Process child = start(command, NULL_IN, ProcessBuilder.Redirect.PIPE,
                                ProcessBuilder.Redirect.DISCARD);
                        try (InputStream out = child.getInputStream()) {
                            printed.append(new String(out.readAllBytes(), StandardCharsets.UTF_8));
                        }
                        assertThat(child.waitFor()).isZero();
                    }
                    printedBox[0] = printed.toString();
                } catch (Throwable e) {
                    failure[0] = e;
                }
            });
            spawner.join(10_000);
            assertThat(spawner.isAlive()).as("the spawning thread, still waiting").isFalse();
            assertThat(failure[0]).as("the spawning thread's failure").isNull();
            String printed = printedBox[0];
            List<String> fds = printed.lines().filter(line -> line.matches("\\d+")).toList();
            // ls's own directory descriptor is the fourth.
            assertThat(fds).hasSizeLessThanOrEqualTo(4).contains("0", "1", "2")
                    .doesNotContain(Integer.toString(inheritable));
            assertThat(printed).contains("SigBlk:\t0000000000000000");
        } finally {
            LinuxCalls.close(inheritable);
        }
    }

    @Test
    void aMissingProgramOrRedirectFileFailsNamingItAndLeavesNothing() {
        assertThatThrownBy(() -> start(List.of("no-such-program-shimmer"), NULL_IN, ProcessBuilder.Redirect.DISCARD,
                ProcessBuilder.Redirect.PIPE))
                .isInstanceOf(IOException.class).hasMessageContaining("no-such-program-shimmer")
                .hasMessageContaining("No such file or directory");
        Path missing = dir.resolve("absent/out");
        assertThatThrownBy(() -> start(List.of("true"), NULL_IN, ProcessBuilder.Redirect.PIPE,
                ProcessBuilder.Redirect.to(missing.toFile())))
                .isInstanceOf(IOException.class).hasMessageContaining(missing.toString());
        assertThatThrownBy(() -> SpawnedProcess.start(List.of("true"), dir.resolve("absent"), Map.of(), NULL_IN,
                ProcessBuilder.Redirect.DISCARD, ProcessBuilder.Redirect.DISCARD))
                .isInstanceOf(IOException.class).hasMessageContaining("No such file or directory");
    }

    @Test
    void stdinFromAPipeADirectoryAndEnvironmentAddedOverOursAsAShimStartHasThem() throws Exception {
        Process child = SpawnedProcess.start(List.of("sh", "-c", "pwd; echo \"$SHIMMER_TEST_VAR $HOME $PATH\"; cat; "
                + "cat >&2"), dir, Map.of("SHIMMER_TEST_VAR", "set", "HOME", "/set/over"), ProcessBuilder.Redirect.PIPE,
                ProcessBuilder.Redirect.PIPE, ProcessBuilder.Redirect.PIPE);
        try (var in = child.getOutputStream()) {
            in.write("options\n".getBytes(StandardCharsets.UTF_8));
        }
        assertThat(child.waitFor()).isZero();
        try (InputStream out = child.getInputStream(); InputStream err = child.getErrorStream()) {
            assertThat(new String(out.readAllBytes(), StandardCharsets.UTF_8))
                    .isEqualTo(dir.toRealPath() + "\nset /set/over " + System.getenv("PATH") + "\noptions\n");
            // The second cat found stdin at its end: the pipe closed when we closed our end.
            assertThat(err.readAllBytes()).isEmpty();
        }
    }

    @Test
    void concurrentWaitsAndChecksReapOnceAndAllSeeTheStatus() throws Exception {
        ExecutorService threads = Executors.newFixedThreadPool(4);
        try {
            for (int round = 0; round < 20; round++) {
                Process child = start(List.of("sh", "-c", "exit 3"), NULL_IN, ProcessBuilder.Redirect.DISCARD,
                        ProcessBuilder.Redirect.DISCARD);
                CountDownLatch go = new CountDownLatch(1);
                List<Future<Integer>> results = new ArrayList<>();
                for (int i = 0; i < 4; i++) {
                    int way = i;
                    results.add(threads.submit(() -> {
                        go.await();
                        if (way % 2 == 0) {
                            return child.waitFor();
                        }
                        while (child.isAlive()) {
                            Thread.onSpinWait();
                        }
                        return child.exitValue();
                    }));
                }
                go.countDown();
                for (Future<Integer> result : results) {
                    assertThat(result.get(10, TimeUnit.SECONDS)).isEqualTo(3);
                }
                assertThat(child.descendants()).isEmpty();
            }
        } finally {
            threads.shutdownNow();
        }
    }

    @Test
    void outputReadAfterTheExitEndsThoughAProcessItLeftHoldsThePipe() throws Exception {
        // As a shim's daemon would if it kept the start command's stdout: the JDK drains the pipe at the exit.
        Process child = start(List.of("sh", "-c", "sleep 30 & echo $!"), NULL_IN, ProcessBuilder.Redirect.PIPE,
                ProcessBuilder.Redirect.DISCARD);
        assertThat(child.waitFor()).isZero();
        String printed;
        long began = System.nanoTime();
        try (InputStream out = child.getInputStream()) {
            printed = new String(out.readAllBytes(), StandardCharsets.UTF_8);
        }
        Duration took = Duration.ofNanos(System.nanoTime() - began);
        int sleeper = Integer.parseInt(printed.strip());
        try {
            LinuxCalls.kill(sleeper, 9);
        } catch (IOException gone) {
            // It ended on its own: the read above waited for it.
        }
        try {
            // Ours when an earlier test made the JVM a subreaper.
            LinuxCalls.waitPid(sleeper, LinuxCalls.WEXITED);
        } catch (IOException notOurs) {
            assertThat(Processes.awaitGone(sleeper, Duration.ofSeconds(5))).isTrue();
        }
        assertThat(took).isLessThan(Duration.ofSeconds(10));
    }

    @Test
    void aScriptWithoutAnInterpreterLineRunsWithTheShellAsTheJdkRunsIt() throws Exception {
        Path script = Files.writeString(dir.resolve("no-shebang"), "echo from a script $$\n");
        Files.setPosixFilePermissions(script, java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
        Process child = start(List.of(script.toString()), NULL_IN, ProcessBuilder.Redirect.PIPE,
                ProcessBuilder.Redirect.DISCARD);
        try (InputStream out = child.getInputStream()) {
            // Its pid is the one spawned: the shell ran it in place, so the pidfd watches the script.
            assertThat(new String(out.readAllBytes(), StandardCharsets.UTF_8))
                    .isEqualTo("from a script " + child.pid() + "\n");
        }
        assertThat(child.waitFor()).isZero();
    }

    @Test
    void aJvmStartedWithSigchldIgnoredStillGetsItsChildrensStatuses() throws Exception {
        // A JVM whose parent ignored SIGCHLD: the kernel would reap our children itself, and no status could be read
        // (every runc command of a remote-only runtime "failed" with 255). Nothing else here loads the JDK's process
        // class, which puts SIGCHLD back to its default; the spawner must do it.
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        // perl (essential in Debian) passes an ignored SIGCHLD on through exec; dash's trap does not.
        Process host = new ProcessBuilder("perl", "-e", "$SIG{CHLD} = 'IGNORE'; exec @ARGV", java.toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                SpawnInIgnoredSigchld.class.getName())
                .redirectErrorStream(true).start();
        String printed;
        try (InputStream out = host.getInputStream()) {
            printed = new String(out.readAllBytes(), StandardCharsets.UTF_8);
        }
        assertThat(host.waitFor()).as(printed).isZero();
        assertThat(printed).contains("SigIgn before: ignored", "exit 3");
    }

    /** The child JVM of {@link #aJvmStartedWithSigchldIgnoredStillGetsItsChildrensStatuses}. */
    static final class SpawnInIgnoredSigchld {
        public static void main(String[] args) throws Exception {
            // SigIgn is a hex mask; SIGCHLD (17) is bit 16.
            String ignored = Files.readAllLines(Path.of("/proc/self/status")).stream()
                    .filter(line -> line.startsWith("SigIgn:")).findFirst().orElseThrow().substring(7).strip();
            System.out.println("SigIgn before: " + ((Long.parseLong(ignored, 16) & (1L << 16)) != 0 ? "ignored"
                    : "default"));
            Process child = SpawnedProcess.start(List.of("sh", "-c", "exit 3"), NULL_IN,
                    ProcessBuilder.Redirect.DISCARD, ProcessBuilder.Redirect.DISCARD);
            System.out.println("exit " + child.waitFor());
        }
    }

    @Test
    void aChildKilledAndLeftWithoutAWaitIsReapedAnyway() throws Exception {
        // As a cancelled shim start leaves it: killed, streams closed, nobody waits. The JDK's reaper would reap it.
        Process child = start(List.of("sleep", "30"), NULL_IN, ProcessBuilder.Redirect.PIPE,
                ProcessBuilder.Redirect.PIPE);
        long pid = child.pid();
        child.destroyForcibly();
        child.getInputStream().close();
        child.getErrorStream().close();
        assertThat(Processes.awaitGone(pid, Duration.ofSeconds(5))).isTrue();
        // No zombie and no pidfd left: checked after each test.
    }

    @Test
    void aWaitingThreadIsInterruptedAndTheChildStaysWaitable() throws Exception {
        Process child = start(List.of("sleep", "30"), NULL_IN, ProcessBuilder.Redirect.DISCARD,
                ProcessBuilder.Redirect.DISCARD);
        Thread waiter = Thread.ofPlatform().start(() -> {
            try {
                child.waitFor();
            } catch (InterruptedException expected) {
                Thread.currentThread().interrupt();
            }
        });
        // Whenever it lands, before the wait or in it: the wait checks between polls of at most 100 ms.
        waiter.interrupt();
        waiter.join(5_000);
        assertThat(waiter.isAlive()).isFalse();
        assertThat(child.isAlive()).isTrue();
        assertThat(child.descendants()).isEmpty();
        assertThat(Processes.isRunning(child.pid())).isTrue();
        child.destroyForcibly();
        assertThat(child.waitFor()).isEqualTo(137);
    }

    /** pthread_sigmask(SIG_BLOCK) of {@code signals} in the calling thread. */
    private static void blockSignals(int... signals) throws Throwable {
        Linker linker = Linker.nativeLinker();
        MethodHandle sigaddset = linker.downcallHandle(linker.defaultLookup().find("sigaddset").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
        MethodHandle mask = linker.downcallHandle(linker.defaultLookup().find("pthread_sigmask").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                        ValueLayout.ADDRESS));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment set = arena.allocate(128);
            for (int signal : signals) {
                int added = (int) sigaddset.invokeExact(set, signal);
                assertThat(added).isZero();
            }
            int blocked = (int) mask.invokeExact(0, set, MemorySegment.NULL);
            assertThat(blocked).isZero();
        }
        String status = Files.readString(Path.of("/proc/thread-self/status"));
        assertThat(status).doesNotContain("SigBlk:\t0000000000000000");
    }

    private static Process start(List<String> command, ProcessBuilder.Redirect in, ProcessBuilder.Redirect out,
            ProcessBuilder.Redirect err) throws IOException {
        return SpawnedProcess.start(command, in, out, err);
    }
}
