package org.shimmer.runtime.linux.cleanup;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.MountTable;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.linux.testing.Zombies;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import reactor.test.StepVerifier;

/**
 * A host JVM killed with SIGKILL while its local container runs, and a new host (this JVM) on the same state: the
 * container is adopted and stays manageable, and a container that ended while no host ran is reported ended, even
 * once its pid names another process.
 */
class HostRestartTest {

    static final Duration TIMEOUT = Duration.ofSeconds(30);
    static final String NS = "restart";
    private static final String RUN = UUID.randomUUID().toString().substring(0, 8);
    private static final Path NS_LAST_PID = Path.of("/proc/sys/kernel/ns_last_pid");

    @TempDir
    Path temp;

    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private RuncOptions runc;
    private Path spec;
    private Path image;
    private Process stranger;

    @BeforeEach
    void setUp() throws Exception {
        resources = new RuntimeResources("restart-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
        runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
        spec = Files.write(temp.resolve("config.json"), BusyboxBundle.spec(temp, "/bin/sleep", "60"));
        image = Files.createDirectories(temp.resolve("image"));
        BusyboxBundle.writeRootfs(image);
    }

    @AfterEach
    void tearDown() throws Exception {
        try {
            if (stranger != null) {
                stranger.destroyForcibly().waitFor();
            }
            assertThat(MountTable.under(List.of(temp))).as("mounts left").isEmpty();
            assertThat(HostCrashTest.processesMentioning(temp.toString())).as("processes left").isEmpty();
            assertThat(Zombies.awaitNone(TIMEOUT)).as("zombie children of the JVM").isEmpty();
        } finally {
            resources.close();
        }
    }

    @Test
    void aRunningContainerOfAKilledHostIsAdoptedAndStaysManageable() throws Exception {
        String id = "adopt-" + RUN;
        killHostOnceStarted(id);
        int pid = runtime.inspect(NS, id).block(TIMEOUT).container().orElseThrow().pid();
        Bundle bundle = runtime.load(NS, id).block(TIMEOUT);

        ShimClient shim = bundle.newShimClient(ShimOpt.local(), runc).block(TIMEOUT);

        TaskState state = shim.state().block(TIMEOUT);
        assertThat(state.status()).isEqualTo(TaskState.Status.RUNNING);
        assertThat(state.pid()).isEqualTo(pid);
        shim.exec("e1", """
                {"args": ["/bin/sh", "-c", "exit 3"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}
                """.getBytes(StandardCharsets.UTF_8), Stdio.none()).block(TIMEOUT);
        shim.start("e1").block(TIMEOUT);
        assertThat(shim.awaitExit("e1").block(TIMEOUT).status()).isEqualTo(3);
        shim.delete("e1").block(TIMEOUT);
        shim.kill(9, false).block(TIMEOUT);
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isEqualTo(137);
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
        bundle.delete().block(TIMEOUT);

        assertThat(Processes.awaitGone(pid, TIMEOUT)).isTrue();
        assertThat(temp.resolve("runc").resolve(NS).resolve(id)).as("runc state").doesNotExist();
        assertThat(runtime.inspect(NS, id).block(TIMEOUT).present()).isFalse();
    }

    /**
     * The container ends while no host runs and its pid goes to an unrelated process. The next host read the pid
     * from {@code local.json} and took that process for the init: the task stayed running, and a kill of it
     * (SIGTERM) ended the unrelated process.
     */
    @Test
    void aPidTheContainerLeftToAnotherProcessIsNeverTakenForItsInit() throws Exception {
        String id = "reused-" + RUN;
        killHostOnceStarted(id);
        BundleInspection crashed = runtime.inspect(NS, id).block(TIMEOUT);
        int pid = crashed.container().orElseThrow().pid();
        Processes.run(null, "kill", "-9", Integer.toString(pid));
        if (Zombies.parentOf(pid) == ProcessHandle.current().pid()) {
            // Re-parented to this JVM when the host died (a subreaper since an earlier test): reap it here.
            LinuxCalls.waitPid(pid, LinuxCalls.WEXITED);
        }
        assertThat(Processes.awaitGone(pid, TIMEOUT)).isTrue();
        stranger = startWithPid(pid);
        Bundle bundle = runtime.load(NS, id).block(TIMEOUT);

        ShimClient shim = bundle.newShimClient(ShimOpt.local(), runc).block(TIMEOUT);

        TaskState state = shim.state().block(TIMEOUT);
        assertThat(state.status()).as("the ended container's task").isEqualTo(TaskState.Status.STOPPED);
        assertThat(state.exitStatus()).isEqualTo(137);
        StepVerifier.create(shim.kill("", 15))
                .expectError(NotFoundException.class)
                .verify(TIMEOUT);
        assertThat(shim.delete().block(TIMEOUT).status()).isEqualTo(137);
        shim.shutdown().block(TIMEOUT);
        bundle.delete().block(TIMEOUT);
        assertThat(stranger.isAlive()).as("the process that got the pid").isTrue();
        assertThat(Processes.run(null, "cat", "/proc/" + pid + "/cmdline")).startsWith("sleep");
    }

    /** Runs {@link CrashingHost} (local shim) until its container started, then kills it with SIGKILL. */
    private void killHostOnceStarted(String id) throws Exception {
        Path log = temp.resolve("host-" + id + ".log");
        Process host = CrashingHost.start(temp, "local", spec, image, NS, id, "unused", log);
        try (BufferedReader out = new BufferedReader(new InputStreamReader(host.getInputStream(),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = out.readLine()) != null && !line.equals("started")) {
                // The steps before.
            }
            assertThat(line).as("host log: " + Files.readString(log)).isEqualTo("started");
            host.destroyForcibly();
        }
        assertThat(host.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
    }

    /**
     * A {@code sleep} that gets {@code pid}, which must be free: the kernel gives the pid after
     * {@code ns_last_pid} to the next process, unless another process of the machine takes it first (then again).
     */
    private static Process startWithPid(int pid) throws Exception {
        for (int attempt = 0; attempt < 1000; attempt++) {
            Files.writeString(NS_LAST_PID, Integer.toString(pid - 1));
            Process sleep = new ProcessBuilder("sleep", "1000").start();
            if (sleep.pid() == pid) {
                return sleep;
            }
            sleep.destroyForcibly().waitFor();
        }
        throw new AssertionError("pid " + pid + " was never given to a process of ours");
    }
}
