package org.shimmer.runtime.linux.container;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.image.ImportRequest;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.image.ImageStore;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.MountTable;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.Leftovers;
import org.shimmer.runtime.linux.testing.NettyLeakDetection;
import org.shimmer.runtime.linux.testing.OciLayouts;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.linux.testing.TarLayers;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.spec.Spec;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.test.StepVerifier;

/**
 * A container's root is an overlay of its rootfs directory under an upper directory of its own (issue 12), through
 * both shims with real runc: a directory holding only {@code bin/} runs and its container writes anywhere, the
 * directory stays byte for byte the same, containers on one directory do not see each other's writes, a read-only
 * root stays read-only, and the upper directory and the overlay mount go with the container, even after its remote
 * shim was killed.
 */
@ExtendWith(NettyLeakDetection.class)
class OverlayRootTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "overlay-test";
    private static final Path SHIM = Path.of("containerd-shim-runc-v2");
    private static final String BUSYBOX = "/bin/busybox";

    @TempDir
    Path temp;

    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private RuncOptions runc;
    /** Only {@code bin/busybox} (with a user xattr) and {@code bin/sh}, a link to it. */
    private Path rootfs;
    private String before;

    @BeforeEach
    void startRuntime() throws Exception {
        resources = new RuntimeResources("overlay-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
        runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
        rootfs = Files.createDirectories(temp.resolve("rootfs"));
        Path bin = Files.createDirectories(rootfs.resolve("bin"));
        Path busybox = Files.copy(BusyboxBundle.BUSYBOX, bin.resolve("busybox"), StandardCopyOption.COPY_ATTRIBUTES);
        Files.getFileAttributeView(busybox, UserDefinedFileAttributeView.class)
                .write("test.origin", ByteBuffer.wrap("lower".getBytes(UTF_8)));
        Files.createSymbolicLink(bin.resolve("sh"), Path.of("busybox"));
        before = TreeDigest.of(rootfs);
    }

    @AfterEach
    void checkNothingIsLeft() throws Exception {
        try {
            assertThat(TreeDigest.of(rootfs)).as("the rootfs directory after the test").isEqualTo(before);
            assertNothingLeft();
        } finally {
            resources.close();
        }
    }

    private ShimOpt shim(String kind) {
        return switch (kind) {
            case "local" -> ShimOpt.local();
            case "remote" -> ShimOpt.remote(SHIM, temp.resolve("daemon.sock").toString(), null, false, null);
            default -> throw new IllegalArgumentException(kind);
        };
    }

    private RunRequest request(String kind, Spec spec) {
        return RunRequest.of(NS, "c-" + UUID.randomUUID().toString().substring(0, 8), spec, rootfs)
                .withShim(shim(kind)).withRuncOptions(runc);
    }

    private RunRequest shell(String kind, String script) {
        return request(kind, Spec.builder().args("/bin/sh", "-c", script).build());
    }

    private static Mono<String> text(Flux<byte[]> chunks) {
        return chunks.map(bytes -> new String(bytes, UTF_8)).reduce("", String::concat);
    }

    /** The first test: runc makes its mount points, the container writes, deletes and changes modes. */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aBinOnlyDirectoryRunsWritableAndStaysByteForByteTheSame(String kind) throws Exception {
        String script = BUSYBOX + " mkdir -p /tmp /etc && echo x > /tmp/x && echo y > /etc/y"
                + " && " + BUSYBOX + " cat /tmp/x /etc/y"
                + " && " + BUSYBOX + " chmod 700 " + BUSYBOX + " && " + BUSYBOX + " rm /bin/sh"
                + " && " + BUSYBOX + " touch -d 2001-01-01 /bin && " + BUSYBOX + " ls /bin";
        long began = System.nanoTime();
        Container container = runtime.run(shell(kind, script)).block(TIMEOUT);
        System.out.printf("%s: run on a bin-only directory's overlay took %d ms%n", kind,
                (System.nanoTime() - began) / 1_000_000);
        Path upper = container.bundle().workDir().resolve(RootfsOverlay.DIR).resolve(RootfsOverlay.UPPER);
        try {
            StepVerifier.create(Mono.zip(text(container.stdout()), text(container.stderr()),
                            container.exit().map(ExitStatus::status)))
                    .assertNext(result -> {
                        assertThat(result.getT2()).isEmpty();
                        assertThat(result.getT1()).isEqualTo("x\ny\nbusybox\n");
                        assertThat(result.getT3()).isZero();
                    })
                    .verifyComplete();
            assertThat(upper.resolve("tmp/x")).hasContent("x");
            assertThat(upper.resolve("etc/y")).hasContent("y");
            assertThat(overlaysOn(container)).as("the overlay on the bundle's rootfs").hasSize(1);
            assertThat(TreeDigest.of(rootfs)).isEqualTo(before);
        } finally {
            container.release().block(TIMEOUT);
        }
        assertThat(upper).doesNotExist();
        assertThat(container.bundle().workDir()).doesNotExist();
        assertThat(overlaysOn(container)).isEmpty();
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aReadOnlyRootfsRefusesWrites(String kind) {
        Spec spec = Spec.builder().args("/bin/sh", "-c", "echo y > /y").readonlyRootfs(true).build();
        StepVerifier.create(Mono.usingWhen(runtime.run(request(kind, spec)),
                        container -> Mono.zip(text(container.stderr()), container.exit().map(ExitStatus::status)),
                        Container::release))
                .assertNext(result -> {
                    assertThat(result.getT1()).contains("Read-only file system");
                    assertThat(result.getT2()).isNotZero();
                })
                .verifyComplete();
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void twoContainersOnOneDirectoryDoNotSeeEachOthersWrites(String kind) {
        Container first = runtime.run(shell(kind, "echo a > /a && echo written && exec " + BUSYBOX + " sleep 30"))
                .block(TIMEOUT);
        try {
            StepVerifier.create(first.stdout().map(chunk -> new String(chunk, UTF_8)).next())
                    .expectNext("written\n").verifyComplete();
            String look = "if [ -e /a ]; then echo a; fi; if [ -e /b ]; then echo b; fi";
            StepVerifier.create(Mono.usingWhen(runtime.run(shell(kind, look + "; echo b > /b; " + look)),
                            container -> text(container.stdout()), Container::release))
                    .expectNext("b\n")
                    .verifyComplete();
            StepVerifier.create(first.exec("look", "/bin/sh", "-c", look).flatMap(exec -> text(exec.stdout())))
                    .expectNext("a\n")
                    .verifyComplete();
        } finally {
            first.release().block(TIMEOUT);
        }
    }

    /** A directory whose path overlay's options could not carry runs: only a link in the work directory names it. */
    @Test
    void aDirectoryWithAColonAndACommaInItsPathRuns() throws Exception {
        Path odd = Files.createDirectories(temp.resolve("odd:dir,x/bin"));
        Files.copy(BusyboxBundle.BUSYBOX, odd.resolve("busybox"), StandardCopyOption.COPY_ATTRIBUTES);
        RunRequest request = RunRequest.of(NS, "odd", Spec.builder().args(BUSYBOX, "echo", "ok").build(),
                odd.getParent()).withRuncOptions(runc);
        StepVerifier.create(Mono.usingWhen(runtime.run(request), container -> text(container.stdout()),
                        Container::release))
                .expectNext("ok\n")
                .verifyComplete();
    }

    /**
     * An image of 60 layers, whose layer paths alone take more than the page mount(2) takes: each shim names the
     * lowers relative to the container's {@code l/} links, the container sees a file of every layer, and the
     * release removes the links without following them into the layers.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void anImageOfSixtyLayersRuns(String kind) throws Exception {
        byte[] busybox = Files.readAllBytes(BusyboxBundle.BUSYBOX);
        OciLayouts.Image built = OciLayouts.image()
                .layer(TarLayers.layer().dir("bin", 0755).file("bin/busybox", busybox, 0755, entry -> {})
                        .dir("l", 0755).bytes());
        for (int n = 1; n < 60; n++) {
            built = built.layer(OciLayouts.tar("l/" + n, "layer " + n));
        }
        OciLayouts.Image many = built.cmd(BUSYBOX, "sh", "-c", BUSYBOX + " ls /l | " + BUSYBOX + " wc -l; " + BUSYBOX
                + " cat /l/59");
        Path layout = OciLayouts.layout().tagged(many, "v1").writeDirectory(temp.resolve("layout-" + kind));
        Image image = runtime.images().importLayout(ImportRequest.of(layout).withName("many:" + kind))
                .block(TIMEOUT);
        Path layers = runtime.config().imageRoot().resolve("layers");
        String layersBefore = TreeDigest.of(layers);
        List<String> lowers = IntStream.range(0, 60)
                .mapToObj(n -> layers.resolve(many.chainId(n).substring(7)).toString())
                .toList();
        assertThat(String.join(":", lowers).length()).as("the layer paths alone").isGreaterThan(4095);

        RunRequest request = RunRequest.of(NS, "many-" + kind, Spec.builder().build(), image).withShim(shim(kind))
                .withRuncOptions(runc);
        StepVerifier.create(Mono.usingWhen(runtime.run(request), container -> Mono.zip(text(container.stdout()),
                                text(container.stderr()), container.exit().map(ExitStatus::status)),
                        Container::release))
                .assertNext(result -> {
                    assertThat(result.getT2()).isEmpty();
                    assertThat(result.getT1()).isEqualTo("59\nlayer 59");
                    assertThat(result.getT3()).isZero();
                })
                .verifyComplete();
        assertThat(TreeDigest.of(layers)).as("the image's layers").isEqualTo(layersBefore);
        StepVerifier.create(runtime.images().remove(image.name())).verifyComplete();
    }

    /**
     * A work root on overlayfs (a Docker or CI container's root) cannot hold an upper directory: the run is refused
     * naming the work root before a bundle or a shim is made, where every mount failed with a bare EINVAL.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aWorkRootOnOverlayfsIsRefusedNamingItBeforeAnythingIsMade(String kind) throws Exception {
        Path merged = Files.createDirectories(temp.resolve("ol/merged"));
        LinuxCalls.mount("overlay", merged.toString(), "overlay", 0, "lowerdir="
                + Files.createDirectories(temp.resolve("ol/lower")) + ",upperdir="
                + Files.createDirectories(temp.resolve("ol/upper")) + ",workdir="
                + Files.createDirectories(temp.resolve("ol/work")));
        try (RuntimeResources inContainer = new RuntimeResources("overlay-test-ol-")) {
            LinuxRuntime onOverlay = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"),
                    merged.resolve("work")), inContainer);
            StepVerifier.create(onOverlay.run(shell(kind, "echo hi")))
                    .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(FailedPreconditionException.class)
                            .hasMessageContaining(merged.resolve("work").toString())
                            .hasMessageContaining("overlayfs")
                            .hasMessageContaining("real file system"))
                    .verify(TIMEOUT);
            assertThat(temp.resolve("state").resolve(NS)).doesNotExist();
            assertThat(merged.resolve("work")).doesNotExist();
        } finally {
            LinuxCalls.umount2(merged.toString(), 0);
        }
    }

    /** Overlay does not cross a mount in a lower: a rootfs with mounts below it is refused, listing them. */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aRootfsWithMountsBelowItIsRefusedListingThem(String kind) throws Exception {
        Path mounted = Files.createDirectories(temp.resolve("mounted"));
        Files.createDirectories(mounted.resolve("bin"));
        Files.copy(BusyboxBundle.BUSYBOX, mounted.resolve("bin/busybox"), StandardCopyOption.COPY_ATTRIBUTES);
        Path data = Files.createDirectories(mounted.resolve("data"));
        String dataMount = data.toRealPath().toString();
        LinuxCalls.mount("tmpfs", data.toString(), "tmpfs", 0, "size=1m");
        try {
            RunRequest request = RunRequest.of(NS, "mounts-" + kind, Spec.builder().args(BUSYBOX, "ls", "/data")
                    .build(), mounted).withShim(shim(kind)).withRuncOptions(runc);
            StepVerifier.create(runtime.run(request))
                    .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(FailedPreconditionException.class)
                            .hasMessageContaining(dataMount)
                            .hasMessageContaining("mounts below"))
                    .verify(TIMEOUT);
            assertThat(temp.resolve("state").resolve(NS).resolve("mounts-" + kind)).doesNotExist();
        } finally {
            LinuxCalls.umount2(data.toString(), 0);
        }
        // A rootfs that is itself a mount point is fine: nothing is hidden.
        LinuxCalls.mount("tmpfs", mounted.toString(), "tmpfs", 0, "size=8m");
        try {
            Files.createDirectories(mounted.resolve("bin"));
            Files.copy(BusyboxBundle.BUSYBOX, mounted.resolve("bin/busybox"), StandardCopyOption.COPY_ATTRIBUTES);
            RunRequest request = RunRequest.of(NS, "mount-" + kind, Spec.builder().args(BUSYBOX, "echo", "ok")
                    .build(), mounted).withShim(shim(kind)).withRuncOptions(runc);
            StepVerifier.create(Mono.usingWhen(runtime.run(request), container -> text(container.stdout()),
                            Container::release))
                    .expectNext("ok\n")
                    .verifyComplete();
        } finally {
            LinuxCalls.umount2(mounted.toString(), 0);
        }
    }

    /**
     * A rootfs inside, or holding, the state, work or image root would show the container its own upper directory
     * or every bundle: refused naming both paths, through a symbolic link too, before anything is made.
     */
    @Test
    void aRootfsInsideOrHoldingTheStateWorkOrImageRootIsRefusedNamingBoth() throws Exception {
        Path work = Files.createDirectories(temp.resolve("work"));
        Path inImages = Files.createDirectories(runtime.config().imageRoot().resolve("somewhere"));
        Path link = Files.createSymbolicLink(temp.resolve("link-to-work"), work);
        Map<Path, Path> refused = Map.of(work, work, link, work, temp, temp.resolve("state"), inImages,
                runtime.config().imageRoot());
        for (Map.Entry<Path, Path> rootfs : refused.entrySet()) {
            StepVerifier.create(runtime.run(RunRequest.of(NS, "inside", Spec.builder().args("/bin/sh").build(),
                            rootfs.getKey()).withRuncOptions(runc)))
                    .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(FailedPreconditionException.class)
                            .hasMessageContaining(rootfs.getKey().toString())
                            .hasMessageContaining(rootfs.getValue().toString()))
                    .verify(TIMEOUT);
        }
        assertThat(temp.resolve("state").resolve(NS)).doesNotExist();
        assertThat(temp.resolve("work").resolve(NS)).doesNotExist();
    }

    /**
     * The shim that mounted the overlay dies mid-run: the release still unmounts it (the shim's own delete, or
     * the delete by force) before the work directory goes, and the lower is never walked.
     */
    @Test
    void aKilledRemoteShimThenReleaseLeavesNoOverlayAndTheLowerUnchanged() throws Exception {
        Container container = runtime.run(shell("remote", "echo x > /x; exec " + BUSYBOX + " sleep 30"))
                .block(TIMEOUT);
        killShim(container);

        StepVerifier.create(container.release()).verifyComplete();
        assertThat(overlaysOn(container)).isEmpty();
        assertThat(container.bundle().workDir()).doesNotExist();
    }

    @Test
    void aKilledRemoteShimThenForceDeleteLeavesNoOverlayAndTheLowerUnchanged() throws Exception {
        Container container = runtime.run(shell("remote", "echo x > /x; exec " + BUSYBOX + " sleep 30"))
                .block(TIMEOUT);
        killShim(container);

        StepVerifier.create(runtime.forceDelete(NS, container.id())).verifyComplete();
        assertThat(overlaysOn(container)).isEmpty();
        assertThat(container.bundle().workDir()).doesNotExist();
        // The handle's own release then finds nothing left to undo.
        StepVerifier.create(container.release()).verifyComplete();
    }

    /**
     * An image's layers as the lowers and its configuration as the spec's defaults: entrypoint and cmd, env,
     * working directory and a user by name (from an /etc/passwd that is a link within the image, its groups from
     * the image's /etc/group); the image cannot be removed
     * while the container exists, and a run of an image removed since it was got fails with NotFoundException.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void anImageRunsOnItsLayersWithItsConfiguration(String kind) throws Exception {
        byte[] busybox = Files.readAllBytes(BusyboxBundle.BUSYBOX);
        OciLayouts.Image built = OciLayouts.image()
                .layer(TarLayers.layer().dir("bin", 0755).file("bin/busybox", busybox, 0755, entry -> {})
                        .symlink("bin/sh", "busybox").dir("etc", 0755).dir("usr", 0755)
                        .file("usr/passwd", "root:x:0:0::/root:/bin/sh\napp:x:1234:1234::/app:/bin/sh\n", 0644)
                        .symlink("etc/passwd", "/usr/passwd")
                        .file("etc/group", "root:x:0:\napp:x:1234:\nextra:x:77:app\n", 0644)
                        .dir("app", 0755).dir("tmp", 01777).bytes())
                .layer(OciLayouts.tar(Map.of("app/greeting", "from the top layer".getBytes(UTF_8))))
                .entrypoint("/bin/sh", "-c")
                .cmd("echo $GREETING; " + BUSYBOX + " id -u; " + BUSYBOX + " id -G; pwd; " + BUSYBOX
                        + " cat greeting; echo; echo mine > /tmp/mine")
                .env("GREETING=hello", "PATH=/bin")
                .workingDir("/app")
                .user("app");
        Path layout = OciLayouts.layout().tagged(built, "v1").writeDirectory(temp.resolve("layout-" + kind));
        Image image = runtime.images().importLayout(ImportRequest.of(layout).withName("app:" + kind)).block(TIMEOUT);
        Path top = runtime.config().imageRoot().resolve("layers").resolve(built.chainId(1).substring(7));
        String layerBefore = TreeDigest.of(top);

        RunRequest request = RunRequest.of(NS, "i-" + kind, Spec.builder().build(), image).withShim(shim(kind))
                .withRuncOptions(runc);
        long began = System.nanoTime();
        Container container = runtime.run(request).block(TIMEOUT);
        System.out.printf("%s: run of a two-layer image (lease, merged spec, overlay) took %d ms%n", kind,
                (System.nanoTime() - began) / 1_000_000);
        try {
            assertThat(container.spec().annotations()).containsEntry(ImageStore.DIGEST_ANNOTATION, image.digest());
            StepVerifier.create(Mono.zip(text(container.stdout()), text(container.stderr()),
                            container.exit().map(ExitStatus::status)))
                    .assertNext(result -> {
                        assertThat(result.getT2()).isEmpty();
                        assertThat(result.getT1()).isEqualTo("hello\n1234\n1234 77\n/app\nfrom the top layer\n");
                        assertThat(result.getT3()).isZero();
                    })
                    .verifyComplete();
            StepVerifier.create(runtime.images().remove(image.name()))
                    .expectError(FailedPreconditionException.class).verify(TIMEOUT);
        } finally {
            container.release().block(TIMEOUT);
        }
        assertThat(TreeDigest.of(top)).as("the image's top layer").isEqualTo(layerBefore);
        StepVerifier.create(runtime.images().remove(image.name())).verifyComplete();
        StepVerifier.create(runtime.run(request))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(NotFoundException.class)
                        .hasMessageContaining(image.name()))
                .verify(TIMEOUT);
    }

    private static void killShim(Container container) throws Exception {
        ProcessHandle shim = ProcessHandle.allProcesses()
                .filter(process -> process.info().commandLine().orElse("").contains("-id " + container.id()))
                .findFirst().orElseThrow();
        assertThat(overlaysOn(container)).hasSize(1);
        shim.destroyForcibly();
        assertThat(Processes.awaitGone(shim.pid(), TIMEOUT)).isTrue();
    }

    /** The mounts on the container's bundle {@code rootfs}, from {@code /proc/self/mountinfo}. */
    private static List<MountTable.MountPoint> overlaysOn(Container container) throws Exception {
        Path target = container.bundle().path().resolve("rootfs");
        return MountTable.mountPoints().stream().filter(point -> point.path().equals(target)).toList();
    }

    /** No bundle, upper directory, runc container, process, shim, mount or zombie of this test is left. */
    private void assertNothingLeft() throws Exception {
        Leftovers.assertNoneUnder(temp, NS, () -> {
            assertThat(Leaks.awaitNoProcessesOf(rootfs, rootfs.toString(), Duration.ofSeconds(5)))
                    .as("container processes").isEmpty();
            Processes.awaitNoneMentioning(temp.resolve("daemon.sock").toString(), Duration.ofSeconds(10));
        });
    }
}
