package org.shimmer.runtime.linux.cleanup;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.linux.testing.Processes;

/** {@link ProcessScans}: scans asked for at once are shared, and each still gets exactly its bundle's processes. */
class ProcessScansTest {

    private static final int BUNDLES = 8;
    private static final int ROUNDS = 20;

    @TempDir
    Path temp;

    private final List<Process> started = new ArrayList<>();

    @AfterEach
    void tearDown() throws Exception {
        for (Process process : started) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /**
     * Eight bundles, each with a process that names it the way {@code runc create} does ({@code --bundle DIR}),
     * scanned by eight threads at once, twenty times: every scan finds its own process and no other, whoever ran
     * the pass it was served by. A bundle without a process finds nothing.
     */
    @Test
    void concurrentScansEachFindTheirOwnProcesses() throws Exception {
        List<BundleProcesses> bundles = new ArrayList<>();
        List<Long> pids = new ArrayList<>();
        for (int i = 0; i < BUNDLES; i++) {
            String id = "scan-" + i;
            Path bundleDir = Files.createDirectories(temp.resolve("state").resolve("ns").resolve(id));
            bundles.add(new BundleProcesses("ns", id, bundleDir, temp.resolve("runc").resolve("ns").resolve(id)));
            // A shell waiting on its stdin (ours, a pipe) with the bundle on its command line, as runc create has
            // it; it forks nothing, so killing it leaves nothing.
            Process process = waiting(bundleDir);
            started.add(process);
            pids.add(process.pid());
        }
        BundleProcesses none = new BundleProcesses("ns", "scan-none", temp.resolve("state/ns/scan-none"),
                temp.resolve("runc/ns/scan-none"));

        ExecutorService threads = Executors.newFixedThreadPool(BUNDLES + 1);
        try {
            for (int round = 0; round < ROUNDS; round++) {
                CountDownLatch go = new CountDownLatch(1);
                List<Future<List<BundleProcesses.Found>>> scans = new ArrayList<>();
                for (BundleProcesses bundle : bundles) {
                    scans.add(threads.submit(() -> {
                        go.await();
                        return bundle.scan();
                    }));
                }
                Future<List<BundleProcesses.Found>> nothing = threads.submit(() -> {
                    go.await();
                    return none.scan();
                });
                go.countDown();
                for (int i = 0; i < BUNDLES; i++) {
                    assertThat(scans.get(i).get(30, TimeUnit.SECONDS)).as("round %d, bundle %d", round, i)
                            .extracting(found -> (long) found.pid()).containsExactly(pids.get(i));
                }
                assertThat(nothing.get(30, TimeUnit.SECONDS)).as("round %d, the bundle with no process", round)
                        .isEmpty();
            }
        } finally {
            threads.shutdownNow();
        }
        assertThat(pids).allSatisfy(pid -> assertThat(Processes.isRunning(pid)).isTrue());
    }

    /** A process that starts after a scan was asked for may be missed, but one that lived when it was asked never. */
    @Test
    void aScanAskedForAfterAProcessStartedFindsIt() throws Exception {
        Path bundleDir = Files.createDirectories(temp.resolve("state/ns/late"));
        BundleProcesses bundle = new BundleProcesses("ns", "late", bundleDir, temp.resolve("runc/ns/late"));
        assertThat(bundle.scan()).isEmpty();
        Process process = waiting(bundleDir);
        started.add(process);

        assertThat(bundle.scan()).extracting(found -> (long) found.pid()).containsExactly(process.pid());
    }

    /**
     * A container's {@code runc init} is recognised by {@code init} as its first argument and its working directory
     * in the rootfs; {@code init} inside another argument ({@code --firecracker-init}) makes no candidate, and a
     * kernel thread is never one.
     */
    @Test
    void anInitInTheRootfsIsFoundAndInitInsideAnotherArgumentIsNot() throws Exception {
        Path bundleDir = Files.createDirectories(temp.resolve("state/ns/initial"));
        Path rootfs = Files.createDirectories(bundleDir.resolve("rootfs"));
        BundleProcesses bundle = new BundleProcesses("ns", "initial", bundleDir, temp.resolve("runc/ns/initial"));
        // argv is [/bin/sh, init]: a script named init, in the rootfs, as runc's init has it.
        Files.writeString(rootfs.resolve("init"), "echo ready; read line\n");
        Process init = new ProcessBuilder("/bin/sh", "init").directory(rootfs.toFile()).start();
        started.add(init);
        Process lookalike = new ProcessBuilder("/bin/sh", "-c", "echo ready; read line", "--firecracker-init")
                .directory(rootfs.toFile()).start();
        started.add(lookalike);
        awaitArgv(init, "/bin/sh\0init\0");
        awaitArgv(lookalike, "/bin/sh\0-c\0echo ready; read line\0--firecracker-init\0");

        assertThat(bundle.scan()).containsExactly(new BundleProcesses.Found((int) init.pid(), false, true));
        assertThat(bundle.mayMatch(commandLine(lookalike.pid()), commandLine(lookalike.pid()).length))
                .as("a process with init inside an argument").isFalse();
        assertThat(bundle.mayMatch(commandLine(init.pid()), commandLine(init.pid()).length)).isTrue();
    }

    private static byte[] commandLine(long pid) throws Exception {
        return Files.readAllBytes(Path.of("/proc/" + pid + "/cmdline"));
    }

    /**
     * A command line longer than the scan's buffer, the bundle past its end: read whole, and found. Only the id
     * within the buffer made a candidate, so this process would have been missed.
     */
    @Test
    void aProcessWhoseCommandLineOutgrowsTheBufferIsStillFound() throws Exception {
        Path bundleDir = Files.createDirectories(temp.resolve("state/ns/long"));
        BundleProcesses bundle = new BundleProcesses("ns", "long", bundleDir, temp.resolve("runc/ns/long"));
        String padding = "p".repeat(2 * ProcessScans.CMDLINE_BUFFER);
        Process process = new ProcessBuilder("/bin/sh", "-c", "echo ready; read line", padding, "--bundle",
                bundleDir.toString())
                .start();
        started.add(process);
        awaitArgv(process, "/bin/sh\0-c\0echo ready; read line\0" + padding + "\0--bundle\0" + bundleDir + "\0");

        assertThat(bundle.scan()).containsExactly(new BundleProcesses.Found((int) process.pid(), false, false));
    }

    /**
     * Until the child has run exec, its command line is the JVM's: its first line of output says the shell runs,
     * and then its command line must be {@code argv}.
     */
    private static void awaitArgv(Process process, String argv) throws Exception {
        try (var out = new java.io.BufferedReader(new java.io.InputStreamReader(process.getInputStream(),
                java.nio.charset.StandardCharsets.UTF_8))) {
            assertThat(out.readLine()).as("pid %d's first line", process.pid()).isEqualTo("ready");
        }
        assertThat(new String(commandLine(process.pid()), java.nio.charset.StandardCharsets.UTF_8)).isEqualTo(argv);
    }

    private static Process waiting(Path bundleDir) throws Exception {
        return new ProcessBuilder("/bin/sh", "-c", "read line", "--bundle", bundleDir.toString()).start();
    }
}
