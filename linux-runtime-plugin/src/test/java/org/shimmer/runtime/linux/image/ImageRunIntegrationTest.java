package org.shimmer.runtime.linux.image;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.shimmer.runtime.linux.testing.TestImages.content;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
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
import org.shimmer.runtime.image.ImageConfig;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.spec.CgroupsLeft;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.Leftovers;
import org.shimmer.runtime.linux.testing.NettyLeakDetection;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.linux.testing.TestImages;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.spec.Spec;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.test.StepVerifier;

/**
 * From an OCI image built by {@code umoci} and {@code skopeo} ({@link TestImages}) to a running container, through
 * {@code LinuxRuntime.images()} and {@code run(RunRequest.of(ns, id, spec, image))}, on both shims: the merged view
 * of three layers, two containers of one image apart yet on the same layer directories, the image's config in the
 * process, the three layout forms, and remove against a container. Each test ends checking that nothing is left
 * (bundles, runc containers, processes, shims, mounts, zombies, cgroups, descriptors).
 */
@ExtendWith(NettyLeakDetection.class)
class ImageRunIntegrationTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "image-run-test";
    private static final Path SHIM = Path.of("containerd-shim-runc-v2");

    private static TestImages images;

    @TempDir
    Path temp;

    private Map<Integer, String> fdsBefore;
    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private RuncOptions runc;

    @BeforeAll
    static void buildImagesAndWarmUp(@TempDir Path warmUp) throws Exception {
        images = TestImages.get();
        // The first remote run of a JVM leaves one connected unix socket open for the JVM's life (every test JVM
        // here shows one); made before the first test's descriptors are counted, it is not taken for a leak.
        try (RuntimeResources resources = new RuntimeResources("image-run-warm-up-")) {
            LinuxRuntime runtime = new LinuxRuntime(new RuntimeConfig(warmUp.resolve("state"),
                    warmUp.resolve("work")), resources);
            Image image = runtime.images().importLayout(images.busybox()).block(TIMEOUT);
            RunRequest request = RunRequest.of(NS, "warm-up", Spec.builder().build(), image)
                    .withShim(ShimOpt.remote(SHIM, warmUp.resolve("daemon.sock").toString(), null, false, null))
                    .withRuncOptions(RuncOptions.defaults().withRuntimeRoot(warmUp.resolve("runc").toString()));
            Mono.usingWhen(runtime.run(request), Container::exit, Container::release).block(TIMEOUT);
        }
        // Its state root is not a test's: no test's check removes the cgroups runc made above its container's.
        CgroupsLeft.assertNoneUnder(warmUp.resolve("state"), NS);
    }

    @BeforeEach
    void startRuntime() {
        fdsBefore = Leaks.openFds();
        resources = new RuntimeResources("image-run-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
        runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
    }

    @AfterEach
    void checkNothingIsLeft() throws Exception {
        try {
            Leftovers.assertNoneUnder(temp, NS, () -> {
                assertThat(Leaks.awaitNoProcessesOf(temp.toRealPath(), NS, Duration.ofSeconds(5)))
                        .as("container processes").isEmpty();
                Processes.awaitNoneMentioning(temp.resolve("daemon.sock").toString(), Duration.ofSeconds(10));
            });
        } finally {
            resources.close();
        }
        // Jars the class loader opened on first use stay open for the JVM's life: not the runtime's.
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5)).values())
                .as("descriptors left open").allMatch(target -> target.endsWith(".jar"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aThreeLayerImageShowsExactlyTheMergedView(String kind) {
        Image image = runtime.images().importLayout(images.layered()).block(TIMEOUT);
        assertThat(image.name()).isEqualTo("layered:" + TestImages.TAG);
        assertThat(image.layers()).hasSize(3).doesNotHaveDuplicates();

        Output out = runToEnd(request(kind, image, "/bin/sh", "-c", String.join("; ",
                "find /data | sort", "echo --",
                "for f in keep.txt replaced.txt d/new2 d/new3 e/y hard1 hard2 link abslink; do cat /data/$f; done",
                "echo --", "readlink /data/link", "readlink /data/abslink",
                "echo --", "stat -c '%i %h' /data/hard1 /data/hard2", "stat -c '%a %u %g %Y' /data/owned",
                "echo --", "cat /data/gone.txt /data/d/old1 /data/e/x /data/gone-dir/inner 2>&1; true")));

        assertThat(out.status()).as(out.toString()).isZero();
        String[] parts = out.stdout().split("--\n", -1);
        assertThat(parts).as(out.stdout()).hasSize(5);
        assertThat(parts[0].lines()).as("the merged listing").containsExactly(
                "/data", "/data/abslink", "/data/d", "/data/d/new2", "/data/d/new3", "/data/e", "/data/e/y",
                "/data/hard1", "/data/hard2", "/data/keep.txt", "/data/link", "/data/owned", "/data/replaced.txt");
        assertThat(parts[1]).as("contents, the newest layer's").isEqualTo(content("keep.txt", 1)
                + content("replaced.txt", 3) + content("d/new2", 2) + content("d/new3", 3) + content("e/y", 2)
                + content("hard1", 2) + content("hard1", 2) + content("keep.txt", 1) + content("d/new2", 2));
        assertThat(parts[2].lines()).as("symlink targets").containsExactly("keep.txt", "/data/d/new2");
        List<String> stats = parts[3].lines().toList();
        assertThat(stats).hasSize(3);
        assertThat(stats.get(0)).as("a hard link pair is one inode").isEqualTo(stats.get(1)).endsWith(" 2");
        assertThat(stats.get(2)).as("mode, owner, mtime of /data/owned")
                .isEqualTo("640 %d %d %d".formatted(TestImages.APP_ID, TestImages.APP_ID, TestImages.OWNED_MTIME));
        assertThat(parts[4].lines()).as("what whiteouts and the opaque directory removed").containsExactly(
                "cat: can't open '/data/gone.txt': No such file or directory",
                "cat: can't open '/data/d/old1': No such file or directory",
                "cat: can't open '/data/e/x': No such file or directory",
                "cat: can't open '/data/gone-dir/inner': No such file or directory");
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void twoContainersOfOneImageDoNotSeeEachOthersWritesAndShareItsLayerDirectories(String kind) throws Exception {
        Image image = runtime.images().importLayout(images.layered()).block(TIMEOUT);
        String probe = "grep ' / / ' /proc/self/mountinfo; stat -c %i /bin/busybox";
        Container first = runtime.run(request(kind, image, "/bin/sh", "-c",
                "echo first > /data/keep.txt && echo first > /written-by-first && " + probe)).block(TIMEOUT);
        try {
            Output firstOut = collect(first);
            assertThat(firstOut.status()).as(firstOut.toString()).isZero();
            // The first container exists (stopped, its upper directory kept) while the second runs; both are kept
            // until their roots' lower directories, links in each one's work directory, are resolved.
            Container secondContainer = runtime.run(request(kind, image, "/bin/sh", "-c",
                    "cat /data/keep.txt; ls /written-by-first 2>&1; " + probe)).block(TIMEOUT);
            try {
                Output second = collect(secondContainer);
                assertThat(second.status()).as(second.toString()).isZero();

                List<String> secondLines = second.stdout().lines().toList();
                assertThat(secondLines.get(0)).isEqualTo(content("keep.txt", 1).strip());
                assertThat(secondLines.get(1)).contains("No such file or directory");
                List<String> firstLines = firstOut.stdout().lines().toList();
                RootMount firstRoot = RootMount.parse(firstLines.get(0));
                RootMount secondRoot = RootMount.parse(secondLines.get(2));
                List<Path> firstLayers = realPaths(firstRoot.lowerDirs());
                assertThat(realPaths(secondRoot.lowerDirs())).as("the same layer directories")
                        .isEqualTo(firstLayers).hasSize(3);
                assertThat(secondRoot.upperDir()).as("an upper directory each").isNotEqualTo(firstRoot.upperDir());
                assertThat(secondLines.get(3)).as("busybox's inode in both").isEqualTo(firstLines.get(1));

                Path imageRoot = runtime.config().imageRoot().toRealPath();
                for (Path lower : firstLayers) {
                    assertThat(lower).as("a layer directory of the store").startsWith(imageRoot);
                    Path keep = lower.resolve("data").resolve("keep.txt");
                    if (Files.exists(keep)) {
                        assertThat(Files.readString(keep)).as("the layer, after a container wrote over it")
                                .isEqualTo(content("keep.txt", 1));
                    }
                    assertThat(lower.resolve("written-by-first")).doesNotExist();
                }
            } finally {
                secondContainer.release().block(TIMEOUT);
            }
        } finally {
            first.release().block(TIMEOUT);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void theImagesEntrypointCmdEnvWorkingDirAndUserAreApplied(String kind) {
        Image image = runtime.images().importLayout(images.busybox()).block(TIMEOUT);
        assertThat(image.name()).isEqualTo("busybox:" + TestImages.TAG);
        assertThat(image.config()).isEqualTo(new ImageConfig(List.of("/bin/busybox"), List.of("echo", "from-cmd"),
                List.of("GREETING=from-image"), "/home/app", "app", Map.of()));

        Output defaults = runToEnd(request(kind, image));
        assertThat(defaults.stdout()).as(defaults.toString()).isEqualTo("from-cmd\n");
        assertThat(defaults.status()).isZero();

        // The caller's args replace cmd and follow the entrypoint; its env joins the image's.
        Output replaced = runToEnd(RunRequest.of(NS, id(), Spec.builder().args("sh", "-c", "env; pwd; id")
                .env("EXTRA", "from-caller").build(), image).withShim(shim(kind)).withRuncOptions(runc));
        assertThat(replaced.status()).as(replaced.toString()).isZero();
        List<String> lines = replaced.stdout().lines().toList();
        assertThat(lines).contains("GREETING=from-image", "EXTRA=from-caller", "/home/app");
        assertThat(lines.getLast()).startsWith("uid=1000(app) gid=1000(app)");

        Output entrypoint = runToEnd(request(kind, image, "echo $GREETING in $PWD").withEntrypoint("/bin/sh", "-c"));
        assertThat(entrypoint.stdout()).as(entrypoint.toString()).isEqualTo("from-image in /home/app\n");
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aZstdLayoutAnOciArchiveAndALayoutDirectoryAllImportAndRun(String kind) {
        // zstd first: its layer is unpacked from zstd, not found unpacked by the others' import.
        Image zstd = runtime.images().importLayout(images.busyboxZstd()).block(TIMEOUT);
        Image archive = runtime.images().importLayout(images.busyboxArchive()).block(TIMEOUT);
        Image directory = runtime.images().importLayout(images.busybox()).block(TIMEOUT);

        assertThat(List.of(zstd.name(), archive.name(), directory.name())).containsExactly(
                "busybox-zstd:" + TestImages.TAG, "busybox-archive:" + TestImages.TAG, "busybox:" + TestImages.TAG);
        assertThat(runtime.images().list().map(Image::name).collectList().block(TIMEOUT))
                .containsExactlyInAnyOrder(zstd.name(), archive.name(), directory.name());
        assertThat(archive.layers()).as("one layer by diff id, whatever its compression")
                .isEqualTo(zstd.layers()).isEqualTo(directory.layers());
        for (Image image : List.of(zstd, archive, directory)) {
            Output out = runToEnd(request(kind, image));
            assertThat(out.stdout()).as(image.name() + ": " + out).isEqualTo("from-cmd\n");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void removeIsRefusedWhileAContainerOfTheImageExistsAndAllowedAfterItsRelease(String kind) {
        Image image = runtime.images().importLayout(images.busybox()).block(TIMEOUT);
        Container container = runtime.run(request(kind, image)).block(TIMEOUT);
        try {
            assertThat(collect(container).status()).isZero();
            // Stopped but not deleted: its root still stacks the image's layers.
            StepVerifier.create(runtime.images().remove(image.name()))
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                            .hasMessageContaining(image.name()))
                    .verify(TIMEOUT);
            assertThat(runtime.images().get(image.name()).block(TIMEOUT)).isEqualTo(image);
        } finally {
            container.release().block(TIMEOUT);
        }

        StepVerifier.create(runtime.images().remove(image.name())).verifyComplete();
        StepVerifier.create(runtime.images().get(image.name())).verifyError(NotFoundException.class);
        StepVerifier.create(runtime.images().list()).verifyComplete();
        StepVerifier.create(runtime.run(request(kind, image))).verifyError(NotFoundException.class);
    }

    private ShimOpt shim(String kind) {
        return switch (kind) {
            case "local" -> ShimOpt.local();
            case "remote" -> ShimOpt.remote(SHIM, temp.resolve("daemon.sock").toString(), null, false, null);
            default -> throw new IllegalArgumentException(kind);
        };
    }

    private static String id() {
        return "i-" + UUID.randomUUID().toString().substring(0, 8);
    }

    private RunRequest request(String kind, Image image, String... args) {
        return RunRequest.of(NS, id(), Spec.builder().args(args).build(), image).withShim(shim(kind))
                .withRuncOptions(runc);
    }

    /** Runs {@code request} to its exit and releases it, whatever happens. */
    private Output runToEnd(RunRequest request) {
        return Mono.usingWhen(runtime.run(request), ImageRunIntegrationTest::output, Container::release)
                .block(TIMEOUT);
    }

    private static Output collect(Container container) {
        return output(container).block(TIMEOUT);
    }

    private static Mono<Output> output(Container container) {
        return Mono.zip(text(container.stdout()), text(container.stderr()), container.exit())
                .map(all -> new Output(all.getT1(), all.getT2(), all.getT3().status()));
    }

    private static Mono<String> text(Flux<byte[]> chunks) {
        return chunks.reduce(new byte[0], (all, chunk) -> {
            byte[] joined = Arrays.copyOf(all, all.length + chunk.length);
            System.arraycopy(chunk, 0, joined, all.length, chunk.length);
            return joined;
        }).map(bytes -> new String(bytes, UTF_8));
    }

    private record Output(String stdout, String stderr, int status) {}

    /** The root mount of a container, from its {@code /proc/self/mountinfo} line. */
    private record RootMount(List<String> lowerDirs, String upperDir) {

        static RootMount parse(String mountinfoLine) {
            String[] after = mountinfoLine.substring(mountinfoLine.indexOf(" - ") + 3).split(" ");
            assertThat(after[0]).as("the root's file system: " + mountinfoLine).isEqualTo("overlay");
            List<String> lower = Stream.of(after[2].split(","))
                    .filter(option -> option.startsWith("lowerdir=") || option.startsWith("lowerdir+="))
                    .flatMap(option -> Stream.of(option.substring(option.indexOf('=') + 1).split(":")))
                    .filter(dir -> !dir.isEmpty()).toList();
            String upper = Stream.of(after[2].split(",")).filter(option -> option.startsWith("upperdir="))
                    .map(option -> option.substring("upperdir=".length())).findFirst().orElseThrow();
            return new RootMount(lower, upper);
        }
    }

    /** The directories the overlay's lower entries (links in a container's work directory) lead to. */
    private static List<Path> realPaths(List<String> lowers) throws IOException {
        List<Path> real = new ArrayList<>();
        for (String lower : lowers) {
            real.add(Path.of(lower).toRealPath());
        }
        return real;
    }
}
