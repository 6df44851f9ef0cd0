package org.shimmer.runtime.linux.image;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
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
import org.shimmer.runtime.Container;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.image.ImportRequest;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.sys.MountTable;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.Leftovers;
import org.shimmer.runtime.linux.testing.OciLayouts;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.linux.testing.TarLayers;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.spec.Spec;
import reactor.core.publisher.Mono;

/**
 * A host killed with SIGKILL while it runs a container from an image (lease, bundle, overlay root, shim, task):
 * the next host finds what is left, a remove of the image is refused exactly while the crashed container's bundle
 * exists, {@code forceDelete} removes it, the same id runs again from the image, and once that one is released the
 * image is removed leaving no layer, lease, scratch, mount, bundle, runc state or process.
 */
class ImageRunCrashTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "image-crash";
    private static final String RUN = UUID.randomUUID().toString().substring(0, 8);
    private static final String NAME = "crash:v1";

    /**
     * The crashed host's parent, a subreaper as init is to a real host: what the host leaves (a runc it ran, a
     * shim daemon, a container) is re-parented to it, not to this JVM (a subreaper too, since its first run), and
     * reaped. It ends once none is left. Says the host's pid; its stdout is the host's.
     */
    private static final String INIT = String.join("\n",
            "import ctypes, os, sys",
            "ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)",
            "pid = os.fork()",
            "if pid == 0:",
            "    os.execvp(sys.argv[1], sys.argv[1:])",
            "while True:",
            "    try:",
            "        os.wait()",
            "    except ChildProcessError:",
            "        break");

    @TempDir
    Path temp;

    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private RuncOptions runc;

    @BeforeEach
    void startRuntime() {
        resources = new RuntimeResources("image-crash-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
        runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
    }

    @AfterEach
    void checkNothingIsLeft() throws Exception {
        try {
            Leftovers.assertNoneUnder(temp, NS);
        } finally {
            resources.close();
        }
    }

    @Test
    void aHostKilledAnywhereInARunFromAnImageLeavesWhatTheNextHostCleansUp() throws Exception {
        Image image = runtime.images().importLayout(ImportRequest.of(busyboxLayout()).withName(NAME))
                .block(TIMEOUT);
        Random random = new Random(11);
        List<String> outcomes = new ArrayList<>();
        for (int round = 0; round < 12; round++) {
            String kind = round % 4 == 3 ? "remote" : "local";
            String id = "c" + round + "-" + RUN;
            // Up to past the run's end: some kills land in the lease, some in the overlay's mount, some in the task.
            long delay = round == 0 ? 0 : random.nextInt(1200);
            outcomes.add(crashAndRecover(kind, id, delay, image));
        }
        System.out.println("A host killed in a run from an image:\n" + String.join("\n", outcomes));
        runtime.images().remove(NAME).block(TIMEOUT);
        Path images = runtime.config().imageRoot();
        assertThat(ImageStoreTest.names(images.resolve("layers"))).as("layers").isEmpty();
        assertThat(ImageStoreTest.names(images.resolve("leases"))).as("leases").isEmpty();
        assertThat(ImageStoreTest.names(images.resolve("tmp"))).as("scratch").isEmpty();
    }

    private String crashAndRecover(String kind, String id, long delay, Image image) throws Exception {
        Path log = temp.resolve("host-" + id + ".log");
        List<String> command = new ArrayList<>(List.of("python3", "-c", INIT));
        command.addAll(List.of(ProcessHandle.current().info().command().orElseThrow(),
                "--enable-native-access=ALL-UNNAMED", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                "-cp", System.getProperty("java.class.path"), RunningHost.class.getName(), kind,
                temp.resolve("state").toString(), temp.resolve("work").toString(), temp.resolve("runc").toString(),
                temp.resolve("daemon.sock").toString(), NS, id, NAME));
        Process init = new ProcessBuilder(command).redirectError(log.toFile()).start();
        String reached = null;
        try (BufferedReader out = new BufferedReader(new InputStreamReader(init.getInputStream(),
                StandardCharsets.UTF_8))) {
            String[] line = String.valueOf(out.readLine()).split(" ");
            assertThat(line[0]).as("host log: %s", log).isEqualTo("running");
            ProcessHandle host = ProcessHandle.of(Long.parseLong(line[1])).orElseThrow();
            Thread.sleep(delay);
            // What the host said before its kill, without waiting for more.
            while (out.ready()) {
                reached = out.readLine();
            }
            host.destroyForcibly();
            assertThat(host.onExit().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS).isAlive()).isFalse();
        }
        String what = id + " (" + kind + ") killed " + delay + " ms into its run, " + (reached == null ? "before"
                : "after") + " it ended";

        boolean bundled = Files.exists(temp.resolve("state").resolve(NS).resolve(id).resolve("config.json"));
        String remove;
        try {
            runtime.images().remove(NAME).block(TIMEOUT);
            remove = "removed";
        } catch (FailedPreconditionException refused) {
            remove = "refused";
        }
        // A bundle holds its image; without one, nothing may.
        assertThat(remove).as(what + ": remove with the bundle " + (bundled ? "there" : "absent"))
                .isEqualTo(bundled ? "refused" : "removed");
        if (!bundled) {
            image = runtime.images().importLayout(ImportRequest.of(busyboxLayout()).withName(NAME)).block(TIMEOUT);
        }

        runtime.forceDelete(NS, id).block(TIMEOUT);
        assertThat(MountTable.atOrUnder(MountTable.mountPoints(), temp.toRealPath())).as(what + ": mounts")
                .isEmpty();
        assertThat(Leaks.awaitNoProcessesOf(temp.toRealPath(), id, Duration.ofSeconds(10))).as(what + ": processes")
                .isEmpty();
        assertThat(temp.resolve("runc").resolve(NS).resolve(id)).as(what + ": runc state").doesNotExist();
        assertThat(temp.resolve("work").resolve(NS).resolve(id)).as(what + ": work directory").doesNotExist();
        // Its init ends once the last process the crashed host left is gone.
        assertThat(init.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as(what + ": processes of the host left")
                .isTrue();

        // The same id runs again from the image.
        Spec spec = Spec.builder().args("/bin/busybox", "sh", "-c", "echo again > /x && cat /x").build();
        String again = Mono.usingWhen(runtime.run(RunRequest.of(NS, id, spec, image).withRuncOptions(runc)),
                container -> Mono.zip(container.stdout().map(String::new).reduce("", String::concat),
                        container.exit()).map(output -> output.getT1() + output.getT2().status()),
                Container::release).block(TIMEOUT);
        assertThat(again).as(what + ": the same id run again").isEqualTo("again\n0");
        Processes.awaitNoneMentioning(id, Duration.ofSeconds(10));
        return what + ": remove " + remove;
    }

    private Path busyboxLayout() throws Exception {
        Path dir = temp.resolve("layout");
        if (!Files.exists(dir)) {
            byte[] busybox = Files.readAllBytes(BusyboxBundle.BUSYBOX);
            OciLayouts.Image built = OciLayouts.image()
                    .layer(TarLayers.layer().dir("bin", 0755).file("bin/busybox", busybox, 0755, e -> {})
                            .symlink("bin/sh", "busybox").dir("tmp", 01777).bytes())
                    .cmd("/bin/busybox", "sleep", "60");
            OciLayouts.layout().tagged(built, "v1").writeDirectory(dir);
        }
        return dir;
    }

    /**
     * The host a test kills: runs {@code NAME} as namespace/id (args: {@code local|remote stateRoot workRoot
     * runcRoot daemon namespace id name}), saying "running" just before the run and "ran" once the container
     * started, then waits to be killed.
     */
    public static final class RunningHost {
        public static void main(String[] args) throws Exception {
            RuntimeResources resources = new RuntimeResources("running-host-");
            LinuxRuntime runtime = new LinuxRuntime(new RuntimeConfig(Path.of(args[1]), Path.of(args[2])),
                    resources);
            Image image = runtime.images().get(args[7]).block();
            ShimOpt shim = args[0].equals("local") ? ShimOpt.local()
                    : ShimOpt.remote(Path.of("containerd-shim-runc-v2"), args[4], null, false, null);
            RunRequest request = RunRequest.of(args[5], args[6], Spec.builder().build(), image).withShim(shim)
                    .withRuncOptions(RuncOptions.defaults().withRuntimeRoot(args[3]));
            System.out.println("running " + ProcessHandle.current().pid());
            System.out.flush();
            runtime.run(request).block();
            System.out.println("ran");
            System.out.flush();
            Thread.sleep(Long.MAX_VALUE);
        }
    }
}
