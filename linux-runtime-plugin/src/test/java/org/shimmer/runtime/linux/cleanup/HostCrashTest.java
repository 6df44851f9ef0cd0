package org.shimmer.runtime.linux.cleanup;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.spec.CgroupPaths;
import org.shimmer.runtime.linux.spec.CgroupsLeft;
import org.shimmer.runtime.linux.sys.MountTable;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.linux.testing.Zombies;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.spec.Spec;
import reactor.core.publisher.Mono;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Issue 9, finding 7: a host JVM killed with SIGKILL at any point of bundle create, shim start, task create and
 * start leaves nothing that {@code forceDelete} from another JVM cannot find and remove: no shim process, socket,
 * runc state, container process, mount, bundle or work directory.
 */
class HostCrashTest {

    static final Duration TIMEOUT = Duration.ofSeconds(30);
    static final String NS = "crash";
    private static final String RUN = UUID.randomUUID().toString().substring(0, 8);

    /**
     * Where the host is killed: after a marker, plus a random delay that lands inside the next step. "address" is
     * the moment the remote shim wrote its {@code address} file: its daemon runs, but the host has not yet written
     * {@code shim.json} (finding 7's window).
     */
    static final List<String> MARKERS = List.of("runtime", "bundle", "address", "shim", "created", "started",
            "address");

    @TempDir
    Path temp;

    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private Path spec;
    private Path image;
    private final Random random = new Random(9);

    @BeforeEach
    void setUp() throws Exception {
        resources = new RuntimeResources("crash-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
        spec = Files.write(temp.resolve("config.json"), BusyboxBundle.spec(temp, "/bin/sleep", "60"));
        image = Files.createDirectories(temp.resolve("image"));
        BusyboxBundle.writeRootfs(image);
    }

    @AfterEach
    void tearDown() throws Exception {
        try {
            assertThat(MountTable.under(List.of(temp))).as("mounts left").isEmpty();
            assertThat(processesMentioning(temp.toString())).as("processes left").isEmpty();
            assertThat(Zombies.awaitNone(TIMEOUT)).as("zombie children of the JVM").isEmpty();
        } finally {
            resources.close();
        }
    }

    @Test
    void forceDeleteCleansUpAfterARemoteHostKilledAtTwentyPoints() throws Exception {
        for (int i = 0; i < 20; i++) {
            crashAndClean("remote", i);
        }
    }

    @Test
    void forceDeleteCleansUpAfterALocalHostKilledAtTenPoints() throws Exception {
        for (int i = 0; i < 10; i++) {
            crashAndClean("local", i);
        }
    }

    /**
     * A host killed while {@code runc create} runs a {@code createRuntime} hook (after runc made the container's
     * cgroups, before its {@code state.json}): the forced delete kills the create, and runc cannot delete a
     * container without state. Each such crash left the container's empty cgroup in every hierarchy for good,
     * and the hook ran on (nothing of it names the bundle; its parent, the create, was killed); so did what the hook
     * forked, once the hook was killed before its child was checked.
     */
    @Test
    void forceDeleteAfterAHostKilledInsideRuncCreateLeavesNoCgroupAndNoHook() throws Exception {
        String id = "in-create-" + RUN;
        Path hookPid = temp.resolve("hook.pid");
        ObjectNode config = (ObjectNode) new ObjectMapper().readTree(Files.readAllBytes(spec));
        // The runtime's own name for the container's cgroup: a forced delete removes no other.
        String cgroup = CgroupPaths.of(temp.resolve("state"), NS, id);
        ((ObjectNode) config.path("linux")).put("cgroupsPath", cgroup);
        config.putObject("hooks").putArray("createRuntime").addObject().put("path", "/bin/sh").putArray("args")
                .add("sh").add("-c").add("sleep 120 & echo $! > " + hookPid + ".partial; mv " + hookPid + ".partial "
                        + hookPid + "; wait");
        Files.write(spec, new ObjectMapper().writeValueAsBytes(config));
        Process host = CrashingHost.start(temp, "local", spec, image, NS, id, "unused",
                temp.resolve("host-" + id + ".log"));
        long hook = 0;
        try {
            awaitFile(hookPid);
            hook = Long.parseLong(Files.readString(hookPid).strip());
            host.destroyForcibly();
            assertThat(host.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
            assertThat(cgroupsOf(cgroup)).as("cgroups runc create made").isNotEmpty();

            runtime.forceDelete(NS, id).block(TIMEOUT);

            assertThat(cgroupsOf(cgroup)).as("cgroups left").isEmpty();
            assertThat(Processes.awaitGone(hook, TIMEOUT)).as("what the hook runc create ran forked").isTrue();
            assertThat(runtime.inspect(NS, id).block(TIMEOUT).present()).isFalse();
        } finally {
            host.destroyForcibly().waitFor();
            if (hook != 0) {
                ProcessHandle.of(hook).ifPresent(ProcessHandle::destroyForcibly);
            }
            CgroupsLeft.assertNoneUnder(temp.resolve("state"), NS);
        }
    }

    /**
     * A bundle whose spec names a cgroup the runtime did not name for it (here runc's {@code /<id>}, which another
     * runc container of that id may hold, stopped and empty) keeps it through a forced delete: it is not ours.
     */
    @Test
    void forceDeleteLeavesACgroupTheRuntimeDidNotNameForTheContainer() throws Exception {
        String id = "foreign-cgroup-" + RUN;
        List<Path> made = new ArrayList<>();
        try (DirectoryStream<Path> hierarchies = Files.newDirectoryStream(Path.of("/sys/fs/cgroup"))) {
            for (Path hierarchy : hierarchies) {
                if (Files.isDirectory(hierarchy, LinkOption.NOFOLLOW_LINKS)
                        && !Files.isSymbolicLink(hierarchy)) {
                    made.add(Files.createDirectory(hierarchy.resolve(id)));
                }
            }
        }
        try {
            runtime.create(NS, id, Files.readAllBytes(spec)).block(TIMEOUT);
            runtime.forceDelete(NS, id).block(TIMEOUT);
            assertThat(cgroupsOf("/" + id)).as("another's empty cgroup").containsExactlyInAnyOrderElementsOf(made);
        } finally {
            for (Path cgroup : made) {
                Files.deleteIfExists(cgroup);
            }
        }
    }

    /**
     * A run of the id of a container whose host crashed is refused with {@code AlreadyExistsException} naming the
     * way out, {@code forceDelete} of that namespace and id: it said only "bundle crash/ID already exists: bundle
     * directory … is present". Doing what it says frees the id: the same run then works and leaves nothing.
     */
    @Test
    void aRunOfTheIdOfACrashedHostsContainerIsRefusedNamingForceDeleteWhichFreesTheId() throws Exception {
        String id = "rerun-" + RUN;
        Process host = CrashingHost.start(temp, "local", spec, image, NS, id, "unused",
                temp.resolve("host-" + id + ".log"));
        try (BufferedReader out = new BufferedReader(new InputStreamReader(host.getInputStream(),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = out.readLine()) != null && !line.equals("started")) {
                // Steps before the container runs.
            }
            assertThat(line).as("the host's container started").isEqualTo("started");
        } finally {
            host.destroyForcibly();
            assertThat(host.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        }
        RunRequest again = RunRequest.of(NS, id, Spec.builder().args("/bin/true").build(), image);

        try {
            assertThatThrownBy(() -> runtime.run(again).block(TIMEOUT)).isInstanceOf(AlreadyExistsException.class)
                    .hasMessageContaining("bundle " + NS + "/" + id + " already exists")
                    .hasMessageContaining("RuntimePlugin.forceDelete(\"" + NS + "\", \"" + id + "\") removes it");
        } finally {
            // Also when the message is not the one wanted: the crashed host's container must not outlive the test.
            runtime.forceDelete(NS, id).block(TIMEOUT);
        }

        ExitStatus exit = Mono.usingWhen(runtime.run(again), Container::exit, Container::release).block(TIMEOUT);
        assertThat(exit.status()).as("the same run once the id is free").isZero();
        assertThat(runtime.inspect(NS, id).block(TIMEOUT).present()).as("its bundle").isFalse();
        assertThat(temp.resolve("runc").resolve(NS).resolve(id)).as("the crashed host's runc state").doesNotExist();
        CgroupsLeft.assertNoneUnder(temp.resolve("state"), NS);
    }

    /** The directories at cgroup path {@code path} under each cgroup hierarchy. */
    private static List<Path> cgroupsOf(String path) throws IOException {
        List<Path> found = new ArrayList<>();
        try (DirectoryStream<Path> hierarchies = Files.newDirectoryStream(Path.of("/sys/fs/cgroup"))) {
            for (Path hierarchy : hierarchies) {
                if (Files.isDirectory(hierarchy.resolve(path.substring(1)), LinkOption.NOFOLLOW_LINKS)) {
                    found.add(hierarchy.resolve(path.substring(1)));
                }
            }
        }
        return found;
    }

    private void crashAndClean(String kind, int point) throws Exception {
        // Unique to this run: runc names the cgroup of a spec without cgroupsPath after the id, and a kill of all
        // its processes must not reach another class's container of the same name.
        String id = kind + "-" + point + "-" + RUN;
        String step = MARKERS.get(point % MARKERS.size());
        String marker = step.equals("address") ? "bundle" : step;
        // The shim's own start (fork, socket, address file) follows "bundle": most kills after it land inside.
        long delayMillis = switch (step) {
            case "started", "address" -> 0;
            case "bundle" -> random.nextInt(400);
            default -> random.nextInt(150);
        };
        Path daemon = temp.resolve("daemon");
        Path log = temp.resolve("host-" + id + ".log");
        long launched = System.nanoTime();
        Process host = CrashingHost.start(temp, kind, spec, image, NS, id, daemon.toString(), log);
        try (BufferedReader out = new BufferedReader(new InputStreamReader(host.getInputStream(),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = out.readLine()) != null && !line.equals(marker)) {
                // Steps before the kill point.
            }
            assertThat(line).as(id + " reached " + marker + "; host log: " + Files.readString(log))
                    .isEqualTo(marker);
            if (step.equals("address") && kind.equals("remote")) {
                awaitFile(temp.resolve("state").resolve(NS).resolve(id).resolve("address"));
            }
            Thread.sleep(delayMillis);
            host.destroyForcibly();
        }
        assertThat(host.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();

        BundleInspection crashed = runtime.inspect(NS, id).block(TIMEOUT);
        boolean shimRecorded = Files.exists(temp.resolve("work").resolve(NS).resolve(id).resolve("shim.json"));
        List<Integer> alive = new ArrayList<>(crashed.processes());
        crashed.container().filter(c -> c.pid() != 0).ifPresent(c -> alive.add(c.pid()));
        crashed.shim().filter(s -> s.kind() == BundleInspection.ShimKind.REMOTE && s.pid() != 0)
                .ifPresent(s -> alive.add(s.pid()));

        long killed = System.nanoTime();
        runtime.forceDelete(NS, id).block(TIMEOUT);
        System.out.printf("%s: killed %d ms after %s, %d ms after launch, left %s (shim.json %s, processes %s);"
                + " forceDelete took %d ms%n", id, delayMillis, step, (killed - launched) / 1_000_000,
                crashed.describe(), shimRecorded ? "written" : "absent", crashed.processes(),
                (System.nanoTime() - killed) / 1_000_000);

        String what = id + " killed " + delayMillis + " ms after " + step + " (" + crashed + ")";
        for (int pid : alive) {
            assertThat(Processes.awaitGone(pid, TIMEOUT)).as(what + ": pid " + pid).isTrue();
        }
        BundleInspection after = runtime.inspect(NS, id).block(TIMEOUT);
        assertThat(after.present()).as(what).isFalse();
        assertThat(after.inUse()).as(what).isFalse();
        assertThat(processesMentioning("-id " + id + " ")).as(what + ": shims").isEmpty();
        assertThat(temp.resolve("runc").resolve(NS).resolve(id)).as(what + ": runc state").doesNotExist();
        assertThat(MountTable.under(List.of(temp))).as(what + ": mounts").isEmpty();
        LaunchRecord record = new LaunchRecord(BundleInspection.ShimKind.REMOTE, null, null, null,
                daemon.toString(), 0, 0);
        assertThat(BundleReaper.computedSocket(record, NS, id).orElseThrow())
                .as(what + ": shim socket").doesNotExist();
    }

    /** The shim writes this file from its own process: no signal reaches us, so poll with a deadline. */
    private static void awaitFile(Path file) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!Files.exists(file)) {
            assertThat(System.nanoTime()).as(file + " appears").isLessThan(deadline);
            Thread.sleep(2);
        }
    }

    /** Live processes whose command line (arguments joined by spaces) contains {@code text}. */
    static List<Integer> processesMentioning(String text) throws IOException {
        List<Integer> found = new ArrayList<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(Path.of("/proc"), entry ->
                entry.getFileName().toString().chars().allMatch(Character::isDigit))) {
            for (Path entry : entries) {
                int pid = Integer.parseInt(entry.getFileName().toString());
                try {
                    String cmdline = new String(Files.readAllBytes(entry.resolve("cmdline")), StandardCharsets.UTF_8)
                            .replace('\0', ' ');
                    if (cmdline.contains(text) && pid != ProcessHandle.current().pid() && Processes.isRunning(pid)) {
                        found.add(pid);
                    }
                } catch (IOException gone) {
                    // Exited meanwhile.
                }
            }
        }
        return found;
    }
}
