package org.shimmer.runtime.linux.shim.local;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.MountTable;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.NettyLeakDetection;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import reactor.core.publisher.Mono;
import reactor.test.StepVerifier;

/**
 * Issue 10 finding 5, with real mounts, runc and shims: per-mount flags survive a bind's remount, stacked mounts
 * are all undone and a user's mount on {@code rootfs} never is, unknown option words fail the create and leave
 * nothing. Each test ends with nothing mounted under its temporary directory.
 */
@ExtendWith(NettyLeakDetection.class)
class RootfsMountsTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "mounts-test";
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path temp;

    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private RuncOptions runc;
    private final List<Bundle> bundles = new ArrayList<>();

    @BeforeEach
    void startRuntime() {
        resources = new RuntimeResources("mounts-test-");
        runtime = new LinuxRuntime(config(), resources);
        runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
    }

    private RuntimeConfig config() {
        return new RuntimeConfig(temp.resolve("state"), temp.resolve("work"));
    }

    @AfterEach
    void checkNothingIsLeft() throws Exception {
        List<MountTable.MountPoint> left = mountsUnder(temp);
        // Undo what a failed test left, deepest and latest first, so the machine stays clean either way.
        for (MountTable.MountPoint point : left.reversed()) {
            LinuxCalls.umount2(point.path().toString(), LinuxCalls.MNT_DETACH);
        }
        assertThat(left).as("mounts left under " + temp).isEmpty();
        for (Bundle bundle : bundles) {
            assertThat(fifos(bundle)).as("FIFOs left").isEmpty();
            runtime.delete(bundle.namespace(), bundle.id()).block(TIMEOUT);
        }
        resources.close();
        Processes.awaitNoneMentioning(temp.toString(), TIMEOUT);
        for (Path root : List.of(temp.resolve("state").resolve(NS), temp.resolve("work").resolve(NS),
                temp.resolve("runc").resolve(NS))) {
            assertThat(names(root)).as("left in " + root).isEmpty();
        }
    }

    @ParameterizedTest(name = "{0} shim")
    @ValueSource(strings = {"local", "remote"})
    void aReadOnlyBindKeepsNosuidNodevNoexecOnTheContainersRoot(String kind) throws Exception {
        List<String> root = rootInsideAContainer(kind, false);

        // The remote assertion records what containerd-shim-runc-v2 1.6.20 does: it remounts a read-only bind with
        // every flag of its options (its mount_linux.go passes them all to the remount), so the four arrive too.
        assertThat(root).contains("ro", "nosuid", "nodev", "noexec");
    }

    /**
     * Records runc 1.1.5's behaviour, not ours: with the spec's {@code root.readonly}, runc remounts {@code /} with
     * bind|remount|rdonly and nothing else, which clears the nosuid, nodev and noexec our mount had. A container
     * that needs them keeps {@code root.readonly} false and asks for {@code ro} in the rootfs mount.
     */
    @Test
    void runcsOwnReadOnlyRootRemountDropsTheOtherFlags() throws Exception {
        List<String> root = rootInsideAContainer("local", true);

        assertThat(root).contains("ro").doesNotContain("nosuid", "nodev", "noexec");
    }

    /** The options of {@code /} that {@code cat /proc/self/mountinfo} prints inside a container of that kind. */
    private List<String> rootInsideAContainer(String kind, boolean readOnlyRoot) throws Exception {
        Path image = image();
        // The root is noexec: the container runs busybox from a bind that is not.
        Path tools = Files.createDirectories(temp.resolve("tools"));
        Files.copy(BusyboxBundle.BUSYBOX, tools.resolve("busybox"), StandardCopyOption.COPY_ATTRIBUTES);
        Files.createDirectories(image.resolve("tools"));
        ObjectNode spec = (ObjectNode) JSON.readTree(BusyboxBundle.spec(
                Files.createDirectories(temp.resolve("specs")), "/tools/busybox", "cat", "/proc/self/mountinfo"));
        spec.withObject("root").put("readonly", readOnlyRoot);
        ObjectNode toolsMount = spec.withArray("mounts").addObject();
        toolsMount.put("destination", "/tools");
        toolsMount.put("type", "bind");
        toolsMount.put("source", tools.toString());
        toolsMount.putArray("options").add("rbind").add("ro");
        Bundle bundle = bundle(JSON.writeValueAsBytes(spec));
        ShimClient shim = bundle.newShimClient(shimOpt(kind), runc).block(TIMEOUT);

        ProcessIo io = shim.create(new CreateOptions(List.of(new Mount("bind", image.toString(),
                List.of("rbind", "ro", "nosuid", "nodev", "noexec"))), Stdio.streams(null))).block(TIMEOUT);
        Mono<String> output = io.stdout().map(bytes -> new String(bytes, UTF_8)).reduce("", String::concat)
                .subscribeOn(resources.io()).cache();
        output.subscribe();
        shim.start().block(TIMEOUT);
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isZero();
        // Read before the delete, which releases the streams: the subscription above reaches the stream on an io
        // thread, and under a loaded CI run it came after the exit (awaitExit waits only for output already
        // subscribed to), then after the delete, and read nothing.
        String mountinfo = output.block(TIMEOUT);
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);

        List<String> root = rootOptions(mountinfo);
        System.out.println(kind + " shim, root.readonly " + readOnlyRoot + ": the container's / is mounted " + root);
        assertThat(mountsUnder(temp)).isEmpty();
        return root;
    }

    @Test
    void twoStackedMountsAreBothUndoneOnDelete() throws Exception {
        Bundle bundle = bundle("/bin/true");
        ShimClient shim = local(bundle);

        shim.create(new CreateOptions(stacked(image()), Stdio.none())).block(TIMEOUT);
        assertThat(mountsAt(bundle.rootfs())).as("tmpfs, then the bind over it").hasSize(2);
        shim.start().block(TIMEOUT);
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isZero();
        shim.delete().block(TIMEOUT);

        assertThat(mountsAt(bundle.rootfs())).isEmpty();
        assertThat(bundle.workDir().resolve(RootfsMounts.FILE)).doesNotExist();
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void twoStackedMountsAreBothUndoneWhenRuncFailsTheCreate() throws Exception {
        Bundle bundle = bundle("/no/such/program");
        ShimClient shim = local(bundle);

        StepVerifier.create(shim.create(new CreateOptions(stacked(image()), Stdio.streams(null))))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(ShimmerException.class))
                .verify(TIMEOUT);

        assertThat(mountsAt(bundle.rootfs())).isEmpty();
        assertThat(bundle.workDir().resolve(RootfsMounts.FILE)).doesNotExist();
        assertThat(names(temp.resolve("runc").resolve(NS))).as("runc containers").isEmpty();
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void whenTheThirdMountFailsTheTwoBeforeItAreUndone() throws Exception {
        Bundle bundle = bundle("/bin/true");
        ShimClient shim = local(bundle);
        Path missing = temp.resolve("no such image");
        List<Mount> mounts = new ArrayList<>(stacked(image()));
        mounts.add(new Mount("bind", missing.toString(), List.of("rbind")));

        StepVerifier.create(shim.create(new CreateOptions(mounts, Stdio.streams(null))))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(ShimmerException.class)
                        .hasMessageContaining(missing.toString()))
                .verify(TIMEOUT);

        assertThat(mountsAt(bundle.rootfs())).isEmpty();
        assertThat(names(temp.resolve("runc").resolve(NS))).as("runc containers").isEmpty();
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void aUsersMountOnTheRootfsDirectorySurvivesDelete() throws Exception {
        Bundle bundle = bundle("/bin/true");
        LinuxCalls.mount("tmpfs", bundle.rootfs().toString(), "tmpfs", 0, "size=1m");
        Files.writeString(bundle.rootfs().resolve("user-data"), "must survive");
        ShimClient shim = local(bundle);

        shim.create(new CreateOptions(stacked(image()), Stdio.none())).block(TIMEOUT);
        assertThat(mountsAt(bundle.rootfs())).as("the user's, then our two").hasSize(3);
        shim.start().block(TIMEOUT);
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isZero();
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);

        assertThat(mountsAt(bundle.rootfs())).as("the user's mount").hasSize(1);
        assertThat(bundle.rootfs().resolve("user-data")).hasContent("must survive");
        LinuxCalls.umount2(bundle.rootfs().toString(), 0);
    }

    @Test
    void anUnknownWordFailsTheCreateNamingItAndLeavesNothing() throws Exception {
        Bundle bundle = bundle("/bin/true");
        Path image = image();
        ShimClient shim = local(bundle);

        StepVerifier.create(shim.create(new CreateOptions(List.of(new Mount("tmpfs", "tmpfs", List.of("size=1m")),
                        new Mount("bind", image.toString(), List.of("rbind", "ro", "nosuchflag"))),
                        Stdio.streams(null))))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidSpecException.class)
                        .hasMessageContaining("\"nosuchflag\"")
                        .hasMessageContaining(image.toString()))
                .verify(TIMEOUT);

        assertThat(mountsUnder(temp)).isEmpty();
        assertThat(names(temp.resolve("runc").resolve(NS))).as("runc containers").isEmpty();
        assertThat(fifos(bundle)).isEmpty();
        // Nothing wedged: the same shim creates and runs the container with correct options.
        shim.create(new CreateOptions(List.of(Mount.readOnlyBind(image)), Stdio.none())).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isZero();
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void aRuntimeAfterAReloadUndoesTheStackedMounts() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient first = local(bundle);
        first.create(new CreateOptions(stacked(image()), Stdio.none())).block(TIMEOUT);
        first.start().block(TIMEOUT);

        resources.close();
        resources = new RuntimeResources("mounts-test-reloaded-");
        runtime = new LinuxRuntime(config(), resources);
        ShimClient again = local(runtime.load(NS, bundle.id()).block(TIMEOUT));
        again.kill(9, false).block(TIMEOUT);
        assertThat(again.awaitExit().block(TIMEOUT).status()).isEqualTo(137);
        again.delete().block(TIMEOUT);
        again.shutdown().block(TIMEOUT);

        assertThat(mountsAt(bundle.rootfs())).isEmpty();
    }

    @Test
    void aReadOnlyBindKeepsTheFlagsOfTheMountItBinds() throws Exception {
        Path target = Files.createDirectories(temp.resolve("target"));
        Path work = Files.createDirectories(temp.resolve("work-dir"));
        Path source = Files.createDirectories(temp.resolve("source"));
        LinuxCalls.mount("tmpfs", source.toString(), "tmpfs",
                LinuxCalls.MS_NOSUID | LinuxCalls.MS_NODEV | LinuxCalls.MS_NOEXEC, "size=1m");
        long kept = LinuxCalls.MS_RDONLY | LinuxCalls.MS_NOSUID | LinuxCalls.MS_NODEV | LinuxCalls.MS_NOEXEC;

        RootfsMounts.mount(List.of(new Mount("bind", source.toString(), List.of("rbind", "ro"))), target, work);
        long readOnly = LinuxCalls.mountFlags(target);
        RootfsMounts.unmount(target, work);
        RootfsMounts.mount(List.of(new Mount("bind", source.toString(), List.of("rbind", "ro", "suid", "exec"))),
                target, work);
        long loosened = LinuxCalls.mountFlags(target);
        RootfsMounts.unmount(target, work);
        LinuxCalls.umount2(source.toString(), 0);

        assertThat(readOnly & kept).as("ro, and the source's nosuid, nodev, noexec").isEqualTo(kept);
        assertThat(loosened & kept).as("only what suid and exec cleared is gone")
                .isEqualTo(LinuxCalls.MS_RDONLY | LinuxCalls.MS_NODEV);
    }

    @Test
    void aBindWithoutRoGetsItsFlagsAndItsAtimeFlagToo() throws Exception {
        Path target = Files.createDirectories(temp.resolve("target"));
        Path work = Files.createDirectories(temp.resolve("work-dir"));

        RootfsMounts.mount(List.of(new Mount("bind", image().toString(), List.of("rbind", "nosuid", "noatime"))),
                target, work);
        long flags = LinuxCalls.mountFlags(target);
        RootfsMounts.unmount(target, work);

        assertThat(flags & (LinuxCalls.MS_NOSUID | LinuxCalls.MS_NOATIME | LinuxCalls.MS_RDONLY))
                .isEqualTo(LinuxCalls.MS_NOSUID | LinuxCalls.MS_NOATIME);
    }

    @Test
    void aPropagationWordIsAppliedByItsOwnCall() throws Exception {
        Path target = Files.createDirectories(temp.resolve("target"));
        Path work = Files.createDirectories(temp.resolve("work-dir"));

        RootfsMounts.mount(List.of(new Mount("tmpfs", "tmpfs", List.of("size=1m", "nodev", "shared"))), target,
                work);
        List<String> fields = mountinfoLine(target);
        RootfsMounts.unmount(target, work);

        assertThat(fields.get(5)).contains("nodev");
        assertThat(fields.subList(6, fields.indexOf("-"))).anyMatch(field -> field.startsWith("shared:"));
    }

    @Test
    void aRemountChangesOnlyAMountThisCreateMade() throws Exception {
        Path target = Files.createDirectories(temp.resolve("target"));
        Path work = Files.createDirectories(temp.resolve("work-dir"));
        LinuxCalls.mount("tmpfs", target.toString(), "tmpfs", 0, "size=1m");
        Path image = image();

        assertThatThrownBy(() -> RootfsMounts.mount(List.of(new Mount("bind", target.toString(),
                List.of("bind", "remount", "ro"))), target, work))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("remount of a mount this create did not make");
        assertThat(LinuxCalls.mountFlags(target) & LinuxCalls.MS_RDONLY).as("the user's mount").isZero();
        RootfsMounts.mount(List.of(new Mount("bind", image.toString(), List.of("rbind")),
                new Mount("bind", image.toString(), List.of("bind", "remount", "ro", "nodev"))), target, work);
        long remounted = LinuxCalls.mountFlags(target);
        RootfsMounts.unmount(target, work);

        assertThat(remounted & (LinuxCalls.MS_RDONLY | LinuxCalls.MS_NODEV))
                .isEqualTo(LinuxCalls.MS_RDONLY | LinuxCalls.MS_NODEV);
        assertThat(mountsAt(target)).as("the user's mount only").hasSize(1);
        LinuxCalls.umount2(target.toString(), 0);
    }

    private ShimClient local(Bundle bundle) {
        return bundle.newShimClient(ShimOpt.local(), runc).block(TIMEOUT);
    }

    private ShimOpt shimOpt(String kind) {
        return kind.equals("local")
                ? ShimOpt.local()
                : ShimOpt.remote(Path.of("containerd-shim-runc-v2"), temp.resolve("daemon.sock").toString(), null,
                        false, exit -> {});
    }

    private Bundle bundle(String... args) throws Exception {
        return bundle(BusyboxBundle.spec(Files.createDirectories(temp.resolve("specs")), args));
    }

    private Bundle bundle(byte[] spec) {
        // A unique id: runc names the container's cgroup after it, and other suites may run at the same time.
        String id = "m-" + UUID.randomUUID().toString().substring(0, 8);
        Bundle bundle = runtime.create(NS, id, spec).block(TIMEOUT);
        bundles.add(bundle);
        return bundle;
    }

    /** A fresh image directory holding busybox. */
    private Path image() throws Exception {
        Path image = Files.createDirectories(temp.resolve("images").resolve(UUID.randomUUID().toString()));
        BusyboxBundle.writeRootfs(image);
        return image;
    }

    /** A tmpfs, then a read-only bind of {@code image} over it. */
    private static List<Mount> stacked(Path image) {
        return List.of(new Mount("tmpfs", "tmpfs", List.of("size=1m")), Mount.readOnlyBind(image));
    }

    /** The per-mount options of {@code /} in a mountinfo text: the last mount there is the one seen. */
    private static List<String> rootOptions(String mountinfo) {
        List<String> options = List.of();
        for (String line : mountinfo.split("\n")) {
            String[] fields = line.split(" ");
            if (fields.length > 5 && fields[4].equals("/")) {
                options = List.of(fields[5].split(","));
            }
        }
        assertThat(options).as("a mount on / in " + mountinfo).isNotEmpty();
        return options;
    }

    /** The fields of the top mount's line in this namespace's mountinfo for {@code dir}. */
    private static List<String> mountinfoLine(Path dir) throws Exception {
        List<String> found = List.of();
        for (String line : Files.readAllLines(MountTable.MOUNTINFO)) {
            List<String> fields = Arrays.asList(line.split(" "));
            if (fields.get(4).equals(dir.toString())) {
                found = fields;
            }
        }
        assertThat(found).as("a mount on " + dir).isNotEmpty();
        return found;
    }

    private static List<MountTable.MountPoint> mountsUnder(Path dir) throws Exception {
        return MountTable.atOrUnder(MountTable.mountPoints(), dir.toRealPath());
    }

    private static List<MountTable.MountPoint> mountsAt(Path dir) throws Exception {
        byte[] name = dir.toRealPath().toString().getBytes(LinuxCalls.FILE_NAMES);
        return MountTable.mountPoints().stream().filter(point -> Arrays.equals(point.name(), name)).toList();
    }

    private static List<String> fifos(Bundle bundle) throws Exception {
        return names(bundle.workDir().resolve("io"));
    }

    private static List<String> names(Path dir) throws Exception {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.map(path -> path.getFileName().toString()).sorted().toList();
        }
    }
}
