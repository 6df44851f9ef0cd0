package org.shimmer.runtime.linux.cleanup;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.spec.CgroupsLeft;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.MountTable;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.linux.testing.Zombies;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.TaskState;
import reactor.core.publisher.Mono;
import reactor.test.StepVerifier;

/**
 * A host JVM killed with SIGKILL while a task it runs is paused (its freezer cgroup frozen), on the local and the
 * remote shim, and the next runtime (this JVM) on the same state: it finds the task paused, not running and not
 * gone; it can resume it (the task runs on, writes on and its exit arrives), or kill and delete it (a delete while
 * it is paused is refused, naming its state), or force the delete; and nothing is left: no frozen cgroup, process,
 * zombie, runc state, mount, FIFO, shim or shim socket.
 */
class PausedHostCrashTest {

    private static final Duration TIMEOUT = HostCrashTest.TIMEOUT;
    private static final String NS = "crash-paused";
    private static final String RUN = UUID.randomUUID().toString().substring(0, 8);
    private static final int S_IFMT = 0170000;
    private static final int S_IFIFO = 0010000;
    /** Prints a line every 100 ms; exits with 7 on SIGTERM. */
    private static final String PROGRAM =
            "trap 'exit 7' TERM; i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done";

    @TempDir
    Path temp;

    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private RuncOptions runc;
    private Path spec;
    private Path image;
    private final List<String> ids = new ArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        resources = new RuntimeResources("paused-crash-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
        runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
        spec = Files.write(temp.resolve("config.json"), BusyboxBundle.spec(temp, "/bin/sh", "-c", PROGRAM));
        image = Files.createDirectories(temp.resolve("image"));
        BusyboxBundle.writeRootfs(image);
    }

    @AfterEach
    void tearDown() throws Exception {
        try {
            // A test that failed midway left its task (frozen, with a shim on the remote one): forced away, so the
            // failure leaves nothing on the machine, and reported, as any test that leaves its bundle fails.
            for (String id : ids) {
                if (runtime.inspect(NS, id).block(TIMEOUT).present()) {
                    runtime.forceDelete(NS, id).block(TIMEOUT);
                    throw new AssertionError("bundle " + NS + "/" + id + " left by the test");
                }
            }
            assertThat(MountTable.under(List.of(temp))).as("mounts left").isEmpty();
            assertThat(HostCrashTest.processesMentioning(temp.toString())).as("processes left").isEmpty();
            assertThat(Zombies.awaitNone(TIMEOUT)).as("zombie children of the JVM").isEmpty();
            assertThat(fifosUnder(temp)).as("FIFOs left").isEmpty();
            CgroupsLeft.assertNoneUnder(temp.resolve("state"), NS);
        } finally {
            resources.close();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aTaskPausedWhenItsHostWasKilledIsPausedForTheNextRuntimeWhichResumesItAndGetsItsExit(String kind)
            throws Exception {
        String id = kind + "-resume-" + RUN;
        Crashed crashed = killHostOncePaused(kind, id);
        // The local init's parent died with the host: only if it was re-parented to this JVM (a subreaper since an
        // earlier test) is its status ours to learn; else it is unknowable, and 137 as containerd says. The remote
        // task's parent, its shim, lives on and tells it.
        int expected = kind.equals("remote") || Zombies.parentOf(crashed.pid) == ProcessHandle.current().pid() ? 7
                : 137;
        Bundle bundle = runtime.load(NS, id).block(TIMEOUT);
        ShimClient shim = bundle.newShimClient(reattach(kind), runc).block(TIMEOUT);
        Mono<TaskEvent.TaskExit> exitEvent = shim.events().map(Envelope::event)
                .ofType(TaskEvent.TaskExit.class).filter(exit -> exit.containerId().equals(id)).next().cache();
        exitEvent.subscribe();

        TaskState state = shim.state().block(TIMEOUT);
        assertThat(state.status()).as("the task the killed host paused").isEqualTo(TaskState.Status.PAUSED);
        assertThat(state.pid()).isEqualTo(crashed.pid);
        shim.resume().block(TIMEOUT);

        assertThat(shim.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.RUNNING);
        assertThat(frozen(crashed.freezer)).as("frozen after the resume").isFalse();
        awaitGrowth(crashed.output, Files.size(crashed.output));
        shim.kill(15, false).block(TIMEOUT);
        ExitStatus exit = shim.awaitExit().block(TIMEOUT);
        assertThat(exit.status()).as("the exit of the resumed task").isEqualTo(expected);
        assertThat(exitEvent.block(TIMEOUT).exitStatus()).as("its TaskExit event").isEqualTo(expected);
        assertThat(shim.delete().block(TIMEOUT).status()).isEqualTo(expected);
        shim.shutdown().block(TIMEOUT);
        bundle.delete().block(TIMEOUT);
        assertNothingLeft(kind, id, crashed);
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aTaskPausedWhenItsHostWasKilledIsKilledAndDeletedByTheNextRuntime(String kind) throws Exception {
        String id = kind + "-kill-" + RUN;
        Crashed crashed = killHostOncePaused(kind, id);
        Bundle bundle = runtime.load(NS, id).block(TIMEOUT);
        ShimClient shim = bundle.newShimClient(reattach(kind), runc).block(TIMEOUT);

        StepVerifier.create(shim.delete()).expectErrorSatisfies(e -> assertThat(e)
                .isInstanceOf(FailedPreconditionException.class)
                .hasMessage("delete task " + NS + "/" + id + ": cannot delete a paused process (state PAUSED)")
                .satisfies(error -> assertThat(((ShimmerException) error).code())
                        .isEqualTo(ErrorCode.FAILED_PRECONDITION)))
                .verify(TIMEOUT);
        assertThat(shim.state().block(TIMEOUT).status()).as("after the refused delete")
                .isEqualTo(TaskState.Status.PAUSED);
        assertThat(frozen(crashed.freezer)).as("frozen after the refused delete").isTrue();
        long written = Files.size(crashed.output);
        Thread.sleep(300);
        assertThat(Files.size(crashed.output)).as("output of the frozen task").isEqualTo(written);

        shim.kill(9, false).block(TIMEOUT);
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isEqualTo(137);
        assertThat(shim.delete().block(TIMEOUT).status()).isEqualTo(137);
        shim.shutdown().block(TIMEOUT);
        bundle.delete().block(TIMEOUT);
        assertNothingLeft(kind, id, crashed);
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aTaskPausedWhenItsHostWasKilledIsRemovedByTheNextRuntimesForcedDelete(String kind) throws Exception {
        String id = kind + "-force-" + RUN;
        Crashed crashed = killHostOncePaused(kind, id);

        runtime.forceDelete(NS, id).block(TIMEOUT);

        assertNothingLeft(kind, id, crashed);
    }

    /**
     * The remote task's shim killed too (as a service manager that kills the host's whole cgroup would): the next
     * runtime's connect finds the shim dead and cleans up after it (the shim's own delete, runc's forced delete of
     * the frozen container), publishes the exit, and the bundle's ordinary delete leaves nothing. In a JVM that
     * is a subreaper (as once any local shim ran in it) the shim whose host died became its child, and once killed
     * its zombie, which no runtime of the JVM reaps: nothing of the bundle names its pid once it is dead
     * (containerd's shim 1.6 writes no {@code shim.pid}), and a zombie of the JVM that is not positively a shim's is
     * left to the JDK. The test reaps it, as {@link HostRestartTest} does the init of a killed host.
     */
    @Test
    void aPausedTaskWhoseShimDiedWithItsHostIsCleanedUpByTheNextRuntimesConnect() throws Exception {
        String id = "remote-shim-" + RUN;
        Crashed crashed = killHostOncePaused("remote", id);
        int shimPid = runtime.inspect(NS, id).block(TIMEOUT).shim().orElseThrow().pid();
        boolean shimIsOurs = Zombies.parentOf(shimPid) == ProcessHandle.current().pid();
        Processes.run(null, "kill", "-9", Integer.toString(shimPid));
        assertThat(Processes.awaitGone(shimPid, TIMEOUT)).as("the shim").isTrue();
        if (shimIsOurs) {
            LinuxCalls.waitPid(shimPid, LinuxCalls.WEXITED);
        }
        Mono<TaskEvent.TaskExit> exitEvent = runtime.events().map(Envelope::event).ofType(TaskEvent.TaskExit.class)
                .filter(exit -> exit.containerId().equals(id)).next().cache();
        exitEvent.subscribe();
        Bundle bundle = runtime.load(NS, id).block(TIMEOUT);

        StepVerifier.create(bundle.newShimClient(ShimOpt.connect(), runc))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(ShimmerException.class)
                        .hasMessageContaining("is not running").hasMessageContaining("its task was cleaned up"))
                .verify(TIMEOUT);

        assertThat(Processes.awaitGone(crashed.pid, TIMEOUT)).as("the frozen init").isTrue();
        assertThat(exitEvent.block(TIMEOUT).exitStatus()).as("its TaskExit event").isEqualTo(137);
        bundle.delete().block(TIMEOUT);
        assertNothingLeft("remote", id, crashed);
    }

    /**
     * What a host killed while its task was paused left: the init's pid, its freezer cgroup, its cgroup in every
     * hierarchy, its output file.
     */
    private record Crashed(int pid, Path freezer, List<Path> cgroups, Path output) {}

    /** Runs {@link CrashingHost} until it paused its started task, then kills it with SIGKILL. */
    private Crashed killHostOncePaused(String kind, String id) throws Exception {
        Path log = temp.resolve("host-" + id + ".log");
        ids.add(id);
        Process host = CrashingHost.start(temp, kind + "-paused", spec, image, NS, id, daemon(), log);
        try (BufferedReader out = new BufferedReader(new InputStreamReader(host.getInputStream(),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = out.readLine()) != null && !line.equals("paused")) {
                // The steps before.
            }
            assertThat(line).as("host log: " + Files.readString(log)).isEqualTo("paused");
        } finally {
            host.destroyForcibly();
        }
        assertThat(host.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        BundleInspection left = runtime.inspect(NS, id).block(TIMEOUT);
        int pid = left.container().orElseThrow().pid();
        assertThat(left.container().orElseThrow().status()).as("runc's state of the container").isEqualTo("paused");
        Path freezer = freezerCgroup(pid);
        assertThat(frozen(freezer)).as("frozen once the host was killed").isTrue();
        if (kind.equals("remote")) {
            assertThat(runtime.taskState(NS, id).block(TIMEOUT).status()).as("the state its live shim reports")
                    .isEqualTo(TaskState.Status.PAUSED);
        }
        return new Crashed(pid, freezer, cgroupsOf(pid), CrashingHost.output(temp, id));
    }

    private ShimOpt reattach(String kind) {
        return kind.equals("local") ? ShimOpt.local() : ShimOpt.connect();
    }

    private String daemon() {
        return temp.resolve("daemon").toString();
    }

    private void assertNothingLeft(String kind, String id, Crashed crashed) throws Exception {
        assertThat(Processes.awaitGone(crashed.pid, TIMEOUT)).as("the init").isTrue();
        assertThat(crashed.freezer).as("the container's freezer cgroup").doesNotExist();
        assertThat(crashed.cgroups.stream().filter(Files::exists)).as("the container's cgroups").isEmpty();
        BundleInspection after = runtime.inspect(NS, id).block(TIMEOUT);
        assertThat(after.present()).as("the bundle").isFalse();
        assertThat(after.inUse()).as("the bundle in use").isFalse();
        assertThat(temp.resolve("runc").resolve(NS).resolve(id)).as("runc state").doesNotExist();
        assertThat(HostCrashTest.processesMentioning("-id " + id + " ")).as("shims").isEmpty();
        assertThat(MountTable.under(List.of(temp))).as("mounts").isEmpty();
        assertThat(fifosUnder(temp)).as("FIFOs").isEmpty();
        if (kind.equals("remote")) {
            LaunchRecord record = new LaunchRecord(BundleInspection.ShimKind.REMOTE, null, null, null, daemon(), 0, 0);
            assertThat(BundleReaper.computedSocket(record, NS, id).orElseThrow()).as("shim socket").doesNotExist();
        }
    }

    /** The task writes a line every 100 ms once it runs: its file grows past {@code size}. */
    private static void awaitGrowth(Path output, long size) throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (Files.size(output) <= size) {
            assertThat(System.nanoTime()).as(output + " grows past " + size + " bytes").isLessThan(deadline);
            Thread.sleep(20);
        }
    }

    /** The freezer cgroup of {@code pid}: v1's freezer hierarchy, or its unified cgroup on v2. */
    private static Path freezerCgroup(int pid) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc", Integer.toString(pid), "cgroup"))) {
            String[] fields = line.split(":", 3);
            if (fields[1].equals("freezer")) {
                return Path.of("/sys/fs/cgroup/freezer" + fields[2]);
            }
            if (fields[0].equals("0") && Files.exists(Path.of("/sys/fs/cgroup/cgroup.controllers"))) {
                return Path.of("/sys/fs/cgroup" + fields[2]);
            }
        }
        throw new AssertionError("no freezer cgroup for pid " + pid);
    }

    /** The cgroup directories of {@code pid} in every hierarchy mounted under {@code /sys/fs/cgroup}. */
    private static List<Path> cgroupsOf(int pid) throws IOException {
        List<Path> found = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of("/proc", Integer.toString(pid), "cgroup"))) {
            String[] fields = line.split(":", 3);
            for (String controller : fields[1].isEmpty() ? List.of("unified") : List.of(fields[1].split(","))) {
                String hierarchy = controller.startsWith("name=") ? controller.substring(5) : controller;
                Path dir = Path.of("/sys/fs/cgroup", hierarchy + fields[2]);
                if (Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
                    found.add(dir);
                }
            }
        }
        assertThat(found).as("cgroups of pid " + pid).isNotEmpty();
        return found;
    }

    private static boolean isFifo(Path file) {
        try {
            return ((int) Files.getAttribute(file, "unix:mode", LinkOption.NOFOLLOW_LINKS) & S_IFMT) == S_IFIFO;
        } catch (IOException gone) {
            return false;
        }
    }

    private static boolean frozen(Path cgroup) throws IOException {
        Path v1 = cgroup.resolve("freezer.state");
        return Files.exists(v1) ? !Files.readString(v1).strip().equals("THAWED")
                : Files.readString(cgroup.resolve("cgroup.freeze")).strip().equals("1");
    }

    /** The FIFOs under {@code root} (the runtime's own events socket is no FIFO). */
    private static List<Path> fifosUnder(Path root) throws IOException {
        try (Stream<Path> files = Files.find(root, Integer.MAX_VALUE, (path, attributes) -> attributes.isOther())) {
            return files.filter(PausedHostCrashTest::isFifo).toList();
        } catch (UncheckedIOException vanished) {
            // A file went while we looked: look again.
            return fifosUnder(root);
        }
    }
}
