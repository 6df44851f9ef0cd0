package org.shimmer.runtime.linux.image;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.InvalidIdentifierException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.ResourceExhaustedException;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.image.ImageConfig;
import org.shimmer.runtime.image.ImportProgress;
import org.shimmer.runtime.image.ImportRequest;
import org.shimmer.runtime.image.InvalidImageException;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.OciLayouts;
import org.shimmer.runtime.linux.testing.OciLayouts.Compression;
import org.shimmer.runtime.linux.testing.TarLayers;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;
import reactor.test.StepVerifier;

class ImageStoreTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final ObjectMapper JSON = JsonMapper.builder().build();

    @TempDir
    Path temp;

    private Scheduler io;
    private ImageStore store;
    private Path root;
    private Map<Integer, String> fdsBefore;

    @BeforeEach
    void setUp() {
        fdsBefore = Leaks.openFds();
        io = Schedulers.newBoundedElastic(4, 1000, "image-test-io");
        root = temp.resolve("images");
        store = new ImageStore(root, io);
    }

    @AfterEach
    void tearDown() throws Exception {
        io.dispose();
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5))).as("descriptors left open").isEmpty();
        if (Files.isDirectory(root.resolve("tmp"))) {
            assertThat(names(root.resolve("tmp"))).as("scratch left in tmp").isEmpty();
        }
    }

    private static OciLayouts.Image threeLayers() {
        return OciLayouts.image()
                .layer(OciLayouts.tar(files("bin/hello", "hello", "etc/motd", "hi")))
                .layer(OciLayouts.tar(files("etc/second", "2")), Compression.NONE)
                .layer(OciLayouts.tar(files("etc/third", "3")), Compression.ZSTD)
                .entrypoint("/bin/hello").cmd("--loud").env("PATH=/bin", "A=1").workingDir("/srv")
                .user("1000:1000").label("org.example", "yes");
    }

    @Test
    void importsADirectoryLayoutIntoLayersByDiffId() throws IOException {
        OciLayouts.Image image = threeLayers();
        Path layout = OciLayouts.layout().tagged(image, "v1").writeDirectory(temp.resolve("hello"));
        List<ImportProgress> progress = new CopyOnWriteArrayList<>();

        Image imported = store.importLayout(ImportRequest.of(layout).withProgress(progress::add)).block(TIMEOUT);

        assertThat(imported.name()).isEqualTo("hello:v1");
        assertThat(imported.digest()).isEqualTo(image.digest());
        assertThat(imported.layers()).containsExactly(image.diffId(0), image.diffId(1), image.diffId(2));
        assertThat(imported.config()).isEqualTo(new ImageConfig(List.of("/bin/hello"), List.of("--loud"),
                List.of("PATH=/bin", "A=1"), "/srv", "1000:1000", Map.of("org.example", "yes")));
        assertThat(imported.size()).isEqualTo("hello".length() + "hi".length() + 2);
        Path first = layerDir(image.chainId(0));
        assertThat(Files.readString(first.resolve("bin/hello"))).isEqualTo("hello");
        assertThat(Files.readString(layerDir(image.chainId(1)).resolve("etc/second"))).isEqualTo("2");
        assertThat(Files.readString(layerDir(image.chainId(2)).resolve("etc/third"))).isEqualTo("3");
        assertThat(names(root.resolve("layers"))).hasSize(3);
        assertThat(progress).last().isEqualTo(new ImportProgress(image.diffId(2), 3, 3,
                progress.getLast().bytes(), progress.getLast().bytes()));
        assertThat(store.list().collectList().block(TIMEOUT)).containsExactly(imported);
        assertThat(store.get("hello:v1").block(TIMEOUT)).isEqualTo(imported);
        for (String dir : List.of("", "layers", "images", "tmp", "leases")) {
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(root.resolve(dir))))
                    .as(dir).isEqualTo("rwx------");
        }
    }

    @Test
    void importsAnOciArchiveNamedAfterItsFile() throws IOException {
        OciLayouts.Image image = threeLayers();
        Path archive = OciLayouts.layout().tagged(image, "v1").writeTar(temp.resolve("busybox.tar"));

        Image imported = store.importLayout(archive).block(TIMEOUT);

        assertThat(imported.name()).isEqualTo("busybox:v1");
        assertThat(imported.digest()).isEqualTo(image.digest());
        assertThat(Files.readString(layerDir(image.chainId(0)).resolve("etc/motd"))).isEqualTo("hi");
    }

    @Test
    void aDockerSaveArchiveImportsItsLayoutAndSkipsTheRest() throws IOException {
        OciLayouts.Image image = threeLayers();
        Path archive = temp.resolve("app.tar");
        try (OutputStream out = Files.newOutputStream(archive);
                TarArchiveOutputStream tar = new TarArchiveOutputStream(out)) {
            put(tar, "blobs/", null, TarConstants.LF_DIR);
            put(tar, "blobs/sha256/", null, TarConstants.LF_DIR);
            for (Map.Entry<String, byte[]> file : OciLayouts.layout().add(image, Map.of(
                    "io.containerd.image.name", "docker.io/library/app:1", "org.opencontainers.image.ref.name", "1"))
                    .files().entrySet()) {
                put(tar, file.getKey(), file.getValue(), TarConstants.LF_NORMAL);
            }
            put(tar, "manifest.json", "[{\"Config\":\"blobs/sha256/x\"}]".getBytes(UTF_8), TarConstants.LF_NORMAL);
            put(tar, "repositories", "{}".getBytes(UTF_8), TarConstants.LF_NORMAL);
            TarArchiveEntry legacy = new TarArchiveEntry("0123/layer.tar", TarConstants.LF_SYMLINK);
            legacy.setLinkName("../blobs/sha256/" + image.layerDigest(0).substring(7));
            tar.putArchiveEntry(legacy);
            tar.closeArchiveEntry();
        }

        Image imported = store.importLayout(archive).block(TIMEOUT);

        assertThat(imported.name()).isEqualTo("docker.io/library/app:1");
        assertThat(imported.digest()).isEqualTo(image.digest());
    }

    @Test
    void anArchiveEntryThatIsALinkWhereALayoutFileBelongsIsRefused() throws IOException {
        Path archive = temp.resolve("evil.tar");
        try (OutputStream out = Files.newOutputStream(archive);
                TarArchiveOutputStream tar = new TarArchiveOutputStream(out)) {
            put(tar, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}".getBytes(UTF_8), TarConstants.LF_NORMAL);
            TarArchiveEntry entry = new TarArchiveEntry("./index.json", TarConstants.LF_SYMLINK);
            entry.setLinkName("/etc/passwd");
            tar.putArchiveEntry(entry);
            tar.closeArchiveEntry();
        }

        StepVerifier.create(store.importLayout(archive, "evil"))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("\"./index.json\" is not a regular file"))
                .verify(TIMEOUT);
    }

    private static void put(TarArchiveOutputStream tar, String name, byte[] content, byte type) throws IOException {
        TarArchiveEntry entry = new TarArchiveEntry(name, type);
        if (content != null) {
            entry.setSize(content.length);
        }
        tar.putArchiveEntry(entry);
        if (content != null) {
            tar.write(content);
        }
        tar.closeArchiveEntry();
    }

    @Test
    void aNestedIndexIsFollowedToTheAmd64Manifest() throws IOException {
        OciLayouts.Image arm = OciLayouts.image().layer(OciLayouts.tar("arch", "arm64")).platform("linux/arm64");
        OciLayouts.Image amd = OciLayouts.image().layer(OciLayouts.tar("arch", "amd64")).platform("linux/amd64");
        Path layout = OciLayouts.layout().tagged(OciLayouts.index(arm, amd), "1.0")
                .writeDirectory(temp.resolve("multi"));

        Image imported = store.importLayout(layout).block(TIMEOUT);

        assertThat(imported.name()).isEqualTo("multi:1.0");
        assertThat(imported.digest()).isEqualTo(amd.digest());
        assertThat(Files.readString(layerDir(imported.layers().getFirst()).resolve("arch"))).isEqualTo("amd64");
    }

    @Test
    void aLayoutWithoutAnAmd64ManifestIsNotFound() throws IOException {
        OciLayouts.Image arm = OciLayouts.image().layer(OciLayouts.tar("arch", "arm64")).platform("linux/arm64");
        Path layout = OciLayouts.layout().tagged(OciLayouts.index(arm), "1.0").writeDirectory(temp.resolve("arm"));

        StepVerifier.create(store.importLayout(layout))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(NotFoundException.class)
                        .hasMessageContaining("no linux/amd64 manifest").hasMessageContaining("linux/arm64"))
                .verify(TIMEOUT);
        StepVerifier.create(store.importLayout(temp.resolve("nothing-here")))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(NotFoundException.class)
                        .hasMessageContaining(temp.resolve("nothing-here").toString()))
                .verify(TIMEOUT);
        StepVerifier.create(store.importLayout(Files.createDirectories(temp.resolve("empty"))))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(NotFoundException.class)
                        .hasMessageContaining("no oci-layout"))
                .verify(TIMEOUT);
        assertThat(store.list().collectList().block(TIMEOUT)).isEmpty();
    }

    /** A manifest's own config says what it runs on: an arm64 image imported on trust never ran. */
    @Test
    void aManifestWhoseConfigIsOfAnotherPlatformIsNotTakenForAmd64() throws IOException {
        OciLayouts.Image unlisted = OciLayouts.image().layer(OciLayouts.tar("arch", "arm64")).platform(null)
                .configArchitecture("arm64");
        Path single = OciLayouts.layout().tagged(unlisted, "1").writeDirectory(temp.resolve("single"));
        OciLayouts.Image lying = OciLayouts.image().layer(OciLayouts.tar("arch", "arm64")).platform("linux/amd64")
                .configArchitecture("arm64");
        Path listed = OciLayouts.layout().tagged(OciLayouts.index(lying), "1").writeDirectory(temp.resolve("lie"));

        StepVerifier.create(store.importLayout(single))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(NotFoundException.class)
                        .hasMessageContaining("no linux/amd64 manifest (it has linux/arm64, by the config")
                        .hasMessageContaining("of its only manifest)"))
                .verify(TIMEOUT);
        assertThat(store.list().collectList().block(TIMEOUT)).isEmpty();
        assertThat(names(root.resolve("layers"))).isEmpty();

        // Listed by an index as linux/amd64: its word is taken, as containerd takes it (configs that name another
        // platform are published, and run).
        StepVerifier.create(store.importLayout(listed).map(Image::name)).expectNextCount(1).verifyComplete();
    }

    /**
     * containerd normalizes a config's platform: x86_64 (uname's name) is amd64 and an os is taken in any case.
     * Such an image imported and ran before its config's platform was checked.
     */
    @Test
    void aConfigOfX86_64IsAmd64AsContainerdNormalizesIt() throws IOException {
        for (String architecture : List.of("x86_64", "x86-64", "AMD64")) {
            OciLayouts.Image unlisted = OciLayouts.image().layer(OciLayouts.tar("arch", architecture)).platform(null)
                    .configArchitecture(architecture);
            Path layout = OciLayouts.layout().tagged(unlisted, "1").writeDirectory(temp.resolve(architecture));

            Image imported = store.importLayout(ImportRequest.of(layout).withName("uname:1")).block(TIMEOUT);

            assertThat(imported.digest()).isEqualTo(unlisted.digest());
            store.remove(imported.name()).block(TIMEOUT);
        }
    }

    /** An index's platform is read as containerd normalizes it: linux/x86_64 there is amd64, not another one. */
    @Test
    void anIndexListingLinuxX86_64IsAmd64AsContainerdNormalizesIt() throws IOException {
        for (String platform : List.of("linux/x86_64", "Linux/X86-64", "linux/AMD64")) {
            OciLayouts.Image arm = OciLayouts.image().layer(OciLayouts.tar("arch", "arm64")).platform("linux/aarch64");
            OciLayouts.Image amd = OciLayouts.image().layer(OciLayouts.tar("arch", "amd64")).platform(platform);
            Path layout = OciLayouts.layout().tagged(OciLayouts.index(arm, amd), "1")
                    .writeDirectory(temp.resolve(platform.replace('/', '-')));

            Image imported = store.importLayout(ImportRequest.of(layout).withName("uname:1")).block(TIMEOUT);

            assertThat(imported.digest()).as(platform).isEqualTo(amd.digest());
            store.remove(imported.name()).block(TIMEOUT);
        }
        OciLayouts.Image arm = OciLayouts.image().layer(OciLayouts.tar("arch", "arm64")).platform("linux/aarch64");
        Path armOnly = OciLayouts.layout().tagged(OciLayouts.index(arm), "1").writeDirectory(temp.resolve("arm"));
        StepVerifier.create(store.importLayout(armOnly))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(NotFoundException.class)
                        .hasMessageContaining("(it has linux/arm64)"))
                .verify(TIMEOUT);
        assertThat(store.list().collectList().block(TIMEOUT)).isEmpty();
    }

    /** Only the chosen platform's manifest is read: a digest this store cannot check elsewhere is no matter. */
    @Test
    void aSha512DescriptorOfAnotherPlatformIsSkippedButOfTheChosenOneIsRefusedNamingIt() throws IOException {
        OciLayouts.Image amd = OciLayouts.image().layer(OciLayouts.tar("arch", "amd64")).platform("linux/amd64");
        Path layout = OciLayouts.layout().tagged(amd, "1.0").writeDirectory(temp.resolve("multi"));
        String sha512 = "sha512:" + "ab".repeat(64);
        ObjectNode index = (ObjectNode) JSON.readTree(layout.resolve("index.json").toFile());
        ObjectNode arm = ((ArrayNode) index.get("manifests")).insertObject(0)
                .put("mediaType", "application/vnd.oci.image.manifest.v1+json").put("digest", sha512).put("size", 10);
        arm.putObject("platform").put("os", "linux").put("architecture", "arm64");
        arm.putObject("annotations").put("org.opencontainers.image.ref.name", "1.0");
        Files.write(layout.resolve("index.json"), JSON.writeValueAsBytes(index));

        Image imported = store.importLayout(layout).block(TIMEOUT);

        assertThat(imported.digest()).isEqualTo(amd.digest());
        ObjectNode amdDescriptor = (ObjectNode) index.get("manifests").get(1);
        amdDescriptor.put("digest", sha512);
        Files.write(layout.resolve("index.json"), JSON.writeValueAsBytes(index));
        store.remove(imported.name()).block(TIMEOUT);
        StepVerifier.create(store.importLayout(layout))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining(sha512).hasMessageContaining("unsupported digest"))
                .verify(TIMEOUT);
        assertThat(store.list().collectList().block(TIMEOUT)).isEmpty();
    }

    @Test
    void aManifestDescriptorNamingAnIndexOrTheOtherWayRoundSaysWhatTheBlobIs() throws IOException {
        OciLayouts.Image amd = OciLayouts.image().layer(OciLayouts.tar("arch", "amd64")).platform("linux/amd64");
        Path layout = OciLayouts.layout().tagged(OciLayouts.index(amd), "1.0").writeDirectory(temp.resolve("kind"));
        ObjectNode index = (ObjectNode) JSON.readTree(layout.resolve("index.json").toFile());
        ObjectNode top = (ObjectNode) index.get("manifests").get(0);
        top.put("mediaType", "application/vnd.oci.image.manifest.v1+json");
        top.putObject("platform").put("os", "linux").put("architecture", "amd64");
        Files.write(layout.resolve("index.json"), JSON.writeValueAsBytes(index));

        StepVerifier.create(store.importLayout(layout))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining(top.get("digest").asText())
                        .hasMessageContaining("listed as a manifest but is an image index"))
                .verify(TIMEOUT);

        Path second = OciLayouts.layout().tagged(amd, "1.0").writeDirectory(temp.resolve("kind2"));
        ObjectNode secondIndex = (ObjectNode) JSON.readTree(second.resolve("index.json").toFile());
        ObjectNode manifest = (ObjectNode) secondIndex.get("manifests").get(0);
        manifest.put("mediaType", "application/vnd.oci.image.index.v1+json");
        manifest.remove("platform");
        Files.write(second.resolve("index.json"), JSON.writeValueAsBytes(secondIndex));

        StepVerifier.create(store.importLayout(second))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining(amd.digest())
                        .hasMessageContaining("listed as an index but is an image manifest"))
                .verify(TIMEOUT);
        assertThat(store.list().collectList().block(TIMEOUT)).isEmpty();
    }

    /** The size feeds the free-space check of later unpacks: a file replaced within its layer counted twice. */
    @Test
    void anImagesSizeCountsAFileReplacedWithinALayerOnce() throws IOException {
        byte[] layer = TarLayers.layer().file("f", "first version", 0644).file("f", "second", 0644).bytes();
        Path layout = OciLayouts.layout().tagged(OciLayouts.image().layer(layer), "1")
                .writeDirectory(temp.resolve("replaced"));

        Image imported = store.importLayout(layout).block(TIMEOUT);

        assertThat(imported.size()).isEqualTo("second".length());
        assertThat(store.get(imported.name()).block(TIMEOUT).size()).isEqualTo("second".length());
    }

    @Test
    void namesComeFromTheCallerThenTheLayout() throws IOException {
        OciLayouts.Image image = OciLayouts.image().layer(OciLayouts.tar("x", "x"));
        Path tagged = OciLayouts.layout().tagged(image, "v1").writeDirectory(temp.resolve("tagged"));
        Path full = OciLayouts.layout().tagged(image, "example.com:5000/team/app:2").writeDirectory(temp.resolve("f"));
        Path containerd = OciLayouts.layout().add(image, Map.of("io.containerd.image.name",
                "docker.io/library/busybox:latest", "org.opencontainers.image.ref.name", "latest"))
                .writeDirectory(temp.resolve("docker"));
        Path untagged = OciLayouts.layout().untagged(image).writeDirectory(temp.resolve("untagged"));

        assertThat(store.importLayout(tagged, "mine").block(TIMEOUT).name()).isEqualTo("mine:latest");
        assertThat(store.importLayout(tagged).block(TIMEOUT).name()).isEqualTo("tagged:v1");
        assertThat(store.importLayout(full).block(TIMEOUT).name()).isEqualTo("example.com:5000/team/app:2");
        assertThat(store.importLayout(containerd).block(TIMEOUT).name())
                .isEqualTo("docker.io/library/busybox:latest");
        StepVerifier.create(store.importLayout(untagged))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidIdentifierException.class)
                        .hasMessageContaining("names no image"))
                .verify(TIMEOUT);
        assertThat(store.list().map(Image::name).collectList().block(TIMEOUT)).containsExactly(
                "docker.io/library/busybox:latest", "example.com:5000/team/app:2", "mine:latest", "tagged:v1");
        assertThat(names(root.resolve("layers"))).hasSize(1);
    }

    @Test
    void severalTaggedImagesNeedANameWhoseTagPicksOne() throws IOException {
        OciLayouts.Image one = OciLayouts.image().layer(OciLayouts.tar("v", "1"));
        OciLayouts.Image two = OciLayouts.image().layer(OciLayouts.tar("v", "2"));
        Path layout = OciLayouts.layout().tagged(one, "v1").tagged(two, "v2").writeDirectory(temp.resolve("app"));

        StepVerifier.create(store.importLayout(layout))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("several images (v1, v2)"))
                .verify(TIMEOUT);
        StepVerifier.create(store.importLayout(layout, "app:v3"))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("none is app:v3"))
                .verify(TIMEOUT);
        Image imported = store.importLayout(layout, "app:v2").block(TIMEOUT);

        assertThat(imported.digest()).isEqualTo(two.digest());
        assertThat(store.list().collectList().block(TIMEOUT)).containsExactly(imported);
    }

    @Test
    void aBadNameIsRefused() throws IOException {
        Path layout = OciLayouts.layout().tagged(OciLayouts.image().layer(OciLayouts.tar("x", "x")), "Bad Tag")
                .writeDirectory(temp.resolve("layout"));

        StepVerifier.create(store.importLayout(layout))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidIdentifierException.class)
                        .hasMessageContaining("Bad Tag"))
                .verify(TIMEOUT);
        StepVerifier.create(Mono.defer(() -> store.get("UPPER")))
                .expectError(InvalidIdentifierException.class).verify(TIMEOUT);
        StepVerifier.create(store.get("absent")).expectErrorSatisfies(e -> assertThat(e)
                .isInstanceOf(NotFoundException.class).hasMessageContaining("absent:latest")).verify(TIMEOUT);
    }

    @Test
    void aConfigFieldOfAnotherJsonTypeIsRefusedNamingItAndNullIsEmpty() throws IOException {
        // Read leniently, an Entrypoint string was no entrypoint at all, and an Env object its values as names.
        Map<String, String> cases = new LinkedHashMap<>();
        cases.put("Entrypoint", "\"/bin/sh -c evil\"");
        cases.put("Cmd", "[\"ok\", 5]");
        cases.put("Env", "{\"A\": \"1\"}");
        cases.put("WorkingDir", "[\"/srv\"]");
        cases.put("User", "1000");
        cases.put("Labels", "{\"k\": {\"v\": 1}}");
        for (Map.Entry<String, String> wrong : cases.entrySet()) {
            OciLayouts.Image image = OciLayouts.image().layer(OciLayouts.tar("x", "x")).cmd("/x")
                    .configField(wrong.getKey(), JSON.readTree(wrong.getValue()));
            Path layout = OciLayouts.layout().tagged(image, "1")
                    .writeDirectory(temp.resolve("wrong-" + wrong.getKey()));

            StepVerifier.create(store.importLayout(layout, "wrong:1"))
                    .expectErrorSatisfies(e -> assertThat(e).as(wrong.getKey())
                            .isInstanceOf(InvalidImageException.class)
                            .hasMessageContaining("config." + wrong.getKey()))
                    .verify(TIMEOUT);
        }
        OciLayouts.Image nulls = OciLayouts.image().layer(OciLayouts.tar("x", "x")).cmd("/x");
        for (String field : List.of("Entrypoint", "Env", "WorkingDir", "User", "Labels")) {
            nulls.configField(field, JSON.nullNode());
        }
        Path layout = OciLayouts.layout().tagged(nulls, "1").writeDirectory(temp.resolve("nulls"));

        assertThat(store.importLayout(layout, "nulls:1").block(TIMEOUT).config())
                .isEqualTo(new ImageConfig(List.of(), List.of("/x"), List.of(), "", "", Map.of()));
        assertThat(store.list().map(Image::name).collectList().block(TIMEOUT)).containsExactly("nulls:1");
    }

    @Test
    void aSecondImportOfTheSameLayoutUnpacksNothing() throws IOException {
        OciLayouts.Image image = threeLayers();
        Path layout = OciLayouts.layout().tagged(image, "v1").writeDirectory(temp.resolve("hello"));
        Image first = store.importLayout(layout).block(TIMEOUT);
        Object dirInode = Files.getAttribute(layerDir(image.chainId(0)), "unix:ino");
        Object fileInode = Files.getAttribute(layerDir(image.chainId(0)).resolve("bin/hello"), "unix:ino");

        Image second = store.importLayout(layout).block(TIMEOUT);

        assertThat(second).isEqualTo(first);
        assertThat(Files.getAttribute(layerDir(image.chainId(0)), "unix:ino")).isEqualTo(dirInode);
        assertThat(Files.getAttribute(layerDir(image.chainId(0)).resolve("bin/hello"), "unix:ino"))
                .isEqualTo(fileInode);

        OciLayouts.Image changed = OciLayouts.image().layer(OciLayouts.tar("bin/hello", "hello, again"));
        OciLayouts.layout().tagged(changed, "v1").writeDirectory(temp.resolve("hello2"));
        Image moved = store.importLayout(temp.resolve("hello2"), "hello:v1").block(TIMEOUT);

        assertThat(moved.digest()).isEqualTo(changed.digest());
        assertThat(store.list().collectList().block(TIMEOUT)).containsExactly(moved);
    }

    @Test
    void imagesSharingALayerShareItsDirectory() throws IOException {
        byte[] base = OciLayouts.tar(files("bin/sh", "shell"));
        OciLayouts.Image a = OciLayouts.image().layer(base).layer(OciLayouts.tar("a", "a"));
        OciLayouts.Image b = OciLayouts.image().layer(base).layer(OciLayouts.tar("b", "b"));
        OciLayouts.layout().tagged(a, "1").writeDirectory(temp.resolve("a"));
        OciLayouts.layout().tagged(b, "1").writeDirectory(temp.resolve("b"));

        Image first = store.importLayout(temp.resolve("a")).block(TIMEOUT);
        Image second = store.importLayout(temp.resolve("b")).block(TIMEOUT);

        assertThat(first.layers().getFirst()).isEqualTo(second.layers().getFirst());
        assertThat(names(root.resolve("layers"))).hasSize(3);
        assertThat(second.size()).isEqualTo("shell".length() + 1);
    }

    @Test
    void aParentALayerMakesOnlyImplicitlyKeepsTheLowerLayersModeAndOwner() throws IOException {
        // Adversarial review: /tmp and /home/u showed 755 0 in the container instead of 1777 0 and 700 1000.
        byte[] middle = TarLayers.layer().dir("tmp", 01777).dir("home", 0755).dir("home/u", 0700,
                e -> e.setIds(1000, 1000)).file("home/u/old", "old", 0600).bytes();
        byte[] top = TarLayers.layer().file("tmp/foo", "foo", 0644).file("home/u/new", "new", 0644)
                .file("home/u/.wh.old", "", 0644).bytes();
        OciLayouts.Image image = OciLayouts.image().layer(OciLayouts.tar("bin/sh", "shell")).layer(middle)
                .layer(top);
        // The same top tar over a lower layer without those directories: another directory, made 0755.
        OciLayouts.Image other = OciLayouts.image().layer(OciLayouts.tar("bin/sh", "shell")).layer(top);

        Image imported = store.importLayout(OciLayouts.layout().tagged(image, "v1")
                .writeDirectory(temp.resolve("home"))).block(TIMEOUT);
        store.importLayout(OciLayouts.layout().tagged(other, "v1").writeDirectory(temp.resolve("bare")))
                .block(TIMEOUT);

        Path upper = layerDir(image.chainId(2));
        assertThat(attribute(upper.resolve("tmp"), "mode") & 07777).isEqualTo(01777);
        assertThat(attribute(upper.resolve("tmp"), "uid")).isEqualTo(0);
        assertThat(attribute(upper.resolve("home/u"), "mode") & 07777).isEqualTo(0700);
        assertThat(attribute(upper.resolve("home/u"), "uid")).isEqualTo(1000);
        assertThat(attribute(upper.resolve("home/u"), "gid")).isEqualTo(1000);
        Path bare = layerDir(other.chainId(1));
        assertThat(bare).isNotEqualTo(upper);
        assertThat(attribute(bare.resolve("tmp"), "mode") & 07777).isEqualTo(0755);
        assertThat(attribute(bare.resolve("home/u"), "mode") & 07777).isEqualTo(0755);
        ImageLease lease = store.lease(imported, temp.resolve("bundle")).block(TIMEOUT);
        lease.close();
        assertThat(lease.layers()).containsExactly(layerDir(image.chainId(0)), layerDir(image.chainId(1)), upper);
    }

    private static int attribute(Path path, String name) throws IOException {
        return (int) Files.getAttribute(path, "unix:" + name, LinkOption.NOFOLLOW_LINKS);
    }

    @Test
    void aLayerListedTwiceIsUnpackedAtEachPlace() throws IOException {
        byte[] same = OciLayouts.tar(files("etc/same", "same"));
        OciLayouts.Image image = OciLayouts.image().layer(same).layer(OciLayouts.tar("x", "x")).layer(same);
        List<ImportProgress> progress = new CopyOnWriteArrayList<>();

        Image imported = store.importLayout(ImportRequest.of(OciLayouts.layout().tagged(image, "1")
                .writeDirectory(temp.resolve("twice"))).withProgress(progress::add)).block(TIMEOUT);

        assertThat(imported.layers()).containsExactly(image.diffId(0), image.diffId(1), image.diffId(0));
        assertThat(imported.size()).isEqualTo(2 * "same".length() + 1);
        // Over other layers, the same tar is another directory (its implicit parents are theirs).
        assertThat(names(root.resolve("layers"))).hasSize(3);
        assertThat(progress).extracting(ImportProgress::layersDone).containsExactly(1, 2, 3);
    }

    @Test
    void aCorruptedBlobFailsItsDigestAndLeavesNothing() throws IOException {
        OciLayouts.Image image = threeLayers();
        Path layout = OciLayouts.layout().tagged(image, "v1").writeDirectory(temp.resolve("hello"));
        Path blob = layout.resolve("blobs/sha256").resolve(image.layerDigest(1).substring(7));
        byte[] bytes = Files.readAllBytes(blob);
        bytes[600] ^= 1;
        Files.write(blob, bytes);

        StepVerifier.create(store.importLayout(layout))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("blob " + image.layerDigest(1))
                        .hasMessageContaining("digest mismatch: expected " + image.layerDigest(1) + ", actual sha256:"))
                .verify(TIMEOUT);
        assertThat(store.list().collectList().block(TIMEOUT)).isEmpty();
        assertThat(names(root.resolve("images"))).isEmpty();
        assertThat(names(root.resolve("layers"))).containsExactly(image.chainId(0).substring(7));
    }

    @Test
    void aLayoutIsCheckedWholeWhenTheStoreHasItsLayersAlready() throws IOException {
        // Adversarial review: the blob of a layer whose diff id was in the store was never opened nor hashed, so a
        // damaged copy of an imported layout imported, and the same copy on an empty store failed.
        OciLayouts.Image image = threeLayers();
        store.importLayout(OciLayouts.layout().tagged(image, "v1").writeDirectory(temp.resolve("hello")))
                .block(TIMEOUT);
        Path corrupted = OciLayouts.layout().tagged(image, "v1").writeDirectory(temp.resolve("corrupted"));
        Path corruptedBlob = corrupted.resolve("blobs/sha256").resolve(image.layerDigest(1).substring(7));
        byte[] bytes = Files.readAllBytes(corruptedBlob);
        bytes[600] ^= 1;
        Files.write(corruptedBlob, bytes);
        Path missing = OciLayouts.layout().tagged(image, "v1").writeDirectory(temp.resolve("missing"));
        Files.delete(missing.resolve("blobs/sha256").resolve(image.layerDigest(2).substring(7)));
        // The same tars (their mtimes are the time of the call), one declared of a type nothing reads.
        Path unknown = OciLayouts.layout().tagged(image.mediaType(2, "application/vnd.example.weird"), "v1")
                .writeDirectory(temp.resolve("unknown"));
        Map<Path, String> refusals = Map.of(
                corrupted, "blob " + image.layerDigest(1) + " (" + Compression.NONE.mediaType() + ") of layout "
                        + corrupted + ": digest mismatch: expected " + image.layerDigest(1) + ", actual sha256:",
                missing, "blob " + image.layerDigest(2) + " (" + Compression.ZSTD.mediaType() + ") of layout "
                        + missing + ": missing from the layout",
                unknown, "layer " + image.layerDigest(2) + " of layout " + unknown + " (diff id " + image.diffId(2)
                        + "): unsupported layer media type \"application/vnd.example.weird\"");

        for (Map.Entry<Path, String> refusal : refusals.entrySet()) {
            // Under its own name, and under the name whose record has this very digest.
            for (String name : List.of(refusal.getKey().getFileName() + ":v1", "hello:v1")) {
                StepVerifier.create(store.importLayout(refusal.getKey(), name))
                        .expectErrorSatisfies(e -> assertThat(e).as(name).isInstanceOf(InvalidImageException.class)
                                .hasMessageContaining(refusal.getValue()))
                        .verify(TIMEOUT);
            }
        }
        assertThat(store.list().collectList().block(TIMEOUT)).extracting(Image::name).containsExactly("hello:v1");
        assertThat(names(root.resolve("layers"))).hasSize(3);
    }

    @Test
    void anUnknownLayerMediaTypeIsRefusedNamingTheLayerAndTheLayout() throws IOException {
        OciLayouts.Image image = threeLayers().mediaType(1, "application/vnd.example.weird");
        Path layout = OciLayouts.layout().tagged(image, "v1").writeDirectory(temp.resolve("hello"));

        StepVerifier.create(store.importLayout(layout))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessage("layer " + image.layerDigest(1) + " of layout " + layout + " (diff id "
                                + image.diffId(1) + "): unsupported layer media type "
                                + "\"application/vnd.example.weird\""))
                .verify(TIMEOUT);
        assertThat(names(root.resolve("images"))).isEmpty();
        assertThat(names(root.resolve("layers"))).isEmpty();
    }

    @Test
    void aLayerWhoseTarIsNotItsDiffIdIsRefused() throws IOException {
        OciLayouts.Image image = threeLayers().wrongDiffId(0, OciLayouts.sha256("other".getBytes(UTF_8)));
        Path layout = OciLayouts.layout().tagged(image, "v1").writeDirectory(temp.resolve("hello"));

        StepVerifier.create(store.importLayout(layout))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("diff id " + OciLayouts.sha256("other".getBytes(UTF_8)))
                        .hasMessageContaining("actual " + image.diffId(0)))
                .verify(TIMEOUT);
        assertThat(names(root.resolve("layers"))).isEmpty();
        assertThat(names(root.resolve("images"))).isEmpty();
    }

    @Test
    void aLayerLeftWithoutARecordWhosePathsExceedPathMaxInTheStoreIsReused() throws IOException {
        String deep = (("d".repeat(200) + "/").repeat(20)) + "f";
        byte[] base = OciLayouts.tar(Map.of(deep, "deep".getBytes(UTF_8)));
        OciLayouts.Image good = OciLayouts.image().layer(base).layer(OciLayouts.tar("x", "x"));
        OciLayouts.Image bad = OciLayouts.image().layer(base).layer(OciLayouts.tar("x", "x"))
                .wrongDiffId(1, OciLayouts.sha256("other".getBytes(UTF_8)));
        StepVerifier.create(store.importLayout(OciLayouts.layout().tagged(bad, "v1")
                        .writeDirectory(temp.resolve("deep-bad"))))
                .expectError(InvalidImageException.class)
                .verify(TIMEOUT);
        assertThat(names(root.resolve("layers"))).as("the base layer, left without a record").hasSize(1);

        Image image = store.importLayout(OciLayouts.layout().tagged(good, "v1")
                .writeDirectory(temp.resolve("deep"))).block(TIMEOUT);

        assertThat(image.size()).isEqualTo(5);
        // The store deletes through descriptors; JUnit's clean-up of the temporary directory would not get there.
        store.remove("deep:v1").block(TIMEOUT);
        assertThat(names(root.resolve("layers"))).isEmpty();
    }

    @Test
    void aBlobOfAnotherSizeThanDeclaredIsRefused() throws IOException {
        OciLayouts.Image small = threeLayers().declaredSize(1, 100);
        OciLayouts.Image large = threeLayers().declaredSize(1, 1L << 40);
        OciLayouts.layout().tagged(small, "v1").writeDirectory(temp.resolve("small"));
        OciLayouts.layout().tagged(large, "v1").writeDirectory(temp.resolve("large"));

        StepVerifier.create(store.importLayout(temp.resolve("small")))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("blob " + small.layerDigest(1))
                        .hasMessageContaining("larger than its declared size 100"))
                .verify(TIMEOUT);
        StepVerifier.create(store.importLayout(temp.resolve("large")))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("blob " + large.layerDigest(1))
                        .hasMessageContaining("shorter than its declared size " + (1L << 40)))
                .verify(TIMEOUT);
        assertThat(names(root.resolve("images"))).isEmpty();
    }

    @Test
    void removeIsRefusedWhileAContainerHoldsTheImage() throws IOException {
        OciLayouts.Image image = threeLayers();
        Image imported = store.importLayout(
                OciLayouts.layout().tagged(image, "v1").writeDirectory(temp.resolve("hello"))).block(TIMEOUT);
        Path bundle = Files.createDirectories(temp.resolve("state/ns/web"));
        Files.writeString(bundle.resolve("config.json"), "{\"ociVersion\":\"1.0.2\",\"annotations\":{\""
                + ImageStore.DIGEST_ANNOTATION + "\":\"" + imported.digest() + "\"}}");

        ImageLease lease = store.lease(imported, bundle).block(TIMEOUT);
        lease.close();

        assertThat(lease.digest()).isEqualTo(imported.digest());
        assertThat(lease.config()).isEqualTo(imported.config());
        assertThat(lease.layers()).containsExactly(layerDir(image.chainId(0)), layerDir(image.chainId(1)),
                layerDir(image.chainId(2)));
        StepVerifier.create(store.remove("hello:v1"))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining("image hello:v1 is in use by container ns/web"))
                .verify(TIMEOUT);
        assertThat(store.get("hello:v1").block(TIMEOUT)).isEqualTo(imported);

        Files.delete(bundle.resolve("config.json"));
        Files.delete(bundle);
        StepVerifier.create(store.remove("hello:v1")).verifyComplete();

        assertThat(store.list().collectList().block(TIMEOUT)).isEmpty();
        assertThat(names(root.resolve("layers"))).isEmpty();
        assertThat(names(root.resolve("leases"))).as("the stale lease is dropped").isEmpty();
        StepVerifier.create(store.lease(imported, bundle))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(NotFoundException.class)
                        .hasMessageContaining("hello:v1"))
                .verify(TIMEOUT);
        StepVerifier.create(store.remove("hello:v1")).expectError(NotFoundException.class).verify(TIMEOUT);
    }

    @Test
    void aNameGoesWhileAnotherNameKeepsTheDigestAContainerHolds() throws IOException {
        Path layout = OciLayouts.layout().tagged(threeLayers(), "v1").writeDirectory(temp.resolve("hello"));
        Image first = store.importLayout(layout, "first").block(TIMEOUT);
        Image second = store.importLayout(layout, "second").block(TIMEOUT);
        Path bundle = Files.createDirectories(temp.resolve("state/ns/web"));
        Files.writeString(bundle.resolve("config.json"), "{\"annotations\":{\"" + ImageStore.DIGEST_ANNOTATION
                + "\":\"" + first.digest() + "\"}}");
        store.lease(first, bundle).block(TIMEOUT).close();

        StepVerifier.create(store.remove("first")).verifyComplete();
        StepVerifier.create(store.remove("second"))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining("image second:latest is in use by container ns/web"))
                .verify(TIMEOUT);

        assertThat(store.list().collectList().block(TIMEOUT)).containsExactly(second);
        assertThat(names(root.resolve("layers"))).hasSize(3);
        try (ImageLease again = store.lease(first, bundle).block(TIMEOUT)) {
            assertThat(again.name()).as("found by digest").isEqualTo("second:latest");
        }
    }

    @Test
    void aLeaseOfABundleFromAnotherImageOrRolledBackDoesNotHold() throws IOException {
        // A rolled-back run only closes its lease (the store has no call to delete one: an unlease by digest and
        // bundle deleted the file another run of the same bundle still held): without its bundle, it is stale.
        Image imported = store.importLayout(OciLayouts.layout().tagged(threeLayers(), "v1")
                .writeDirectory(temp.resolve("hello"))).block(TIMEOUT);
        Path other = Files.createDirectories(temp.resolve("state/ns/other"));
        Files.writeString(other.resolve("config.json"), "{\"annotations\":{\"" + ImageStore.DIGEST_ANNOTATION
                + "\":\"sha256:" + "0".repeat(64) + "\"}}");
        Path rolledBack = Files.createDirectories(temp.resolve("state/ns/rolled"));
        Files.writeString(rolledBack.resolve("config.json"), "{\"annotations\":{\"" + ImageStore.DIGEST_ANNOTATION
                + "\":\"" + imported.digest() + "\"}}");
        store.lease(imported, other).block(TIMEOUT).close();
        store.lease(imported, rolledBack).block(TIMEOUT).close();
        Files.delete(rolledBack.resolve("config.json"));
        Files.delete(rolledBack);

        StepVerifier.create(store.remove("hello:v1")).verifyComplete();
        assertThat(names(root.resolve("leases"))).isEmpty();
    }

    @Test
    void removeKeepsTheLayersOtherImagesUse() throws IOException {
        byte[] base = OciLayouts.tar(files("bin/sh", "shell"));
        OciLayouts.Image a = OciLayouts.image().layer(base).layer(OciLayouts.tar("a", "a"));
        OciLayouts.Image b = OciLayouts.image().layer(base).layer(OciLayouts.tar("b", "b"));
        store.importLayout(OciLayouts.layout().tagged(a, "1").writeDirectory(temp.resolve("a"))).block(TIMEOUT);
        store.importLayout(OciLayouts.layout().tagged(b, "1").writeDirectory(temp.resolve("b"))).block(TIMEOUT);

        store.remove("a:1").block(TIMEOUT);

        assertThat(names(root.resolve("layers"))).containsExactlyInAnyOrder(a.chainId(0).substring(7),
                b.chainId(1).substring(7));
        assertThat(store.list().map(Image::name).collectList().block(TIMEOUT)).containsExactly("b:1");
    }

    @Test
    void twoConcurrentImportsOfOneLayoutBothSucceedWithOneCopyOfEachLayer() throws IOException {
        OciLayouts.Image image = OciLayouts.image().layer(OciLayouts.tar(Map.of("big", bytes(4 << 20, 1))))
                .layer(OciLayouts.tar(Map.of("big2", bytes(4 << 20, 2))));
        Path layout = OciLayouts.layout().tagged(image, "v1").writeDirectory(temp.resolve("app"));

        List<Image> both = Mono.zip(store.importLayout(layout), store.importLayout(layout),
                (x, y) -> List.of(x, y)).block(TIMEOUT);

        assertThat(both).extracting(Image::digest).containsOnly(image.digest());
        assertThat(names(root.resolve("layers"))).containsExactlyInAnyOrder(image.chainId(0).substring(7),
                image.chainId(1).substring(7));
        assertThat(store.list().collectList().block(TIMEOUT)).hasSize(1);
    }

    @Test
    void aHostileLayerIsRefusedAndWritesNothingOutsideTheStore() throws IOException {
        byte[] hostile = TarLayers.layer().file("ok", "fine", 0644).symlink("up", "/")
                .file("up" + temp.resolve("outside").toString(), "escaped", 0644).bytes();
        OciLayouts.Image image = OciLayouts.image().layer(OciLayouts.tar("base", "b")).layer(hostile);
        Path layout = OciLayouts.layout().tagged(image, "v1").writeDirectory(temp.resolve("hostile"));

        StepVerifier.create(store.importLayout(layout))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining(image.diffId(1)).hasMessageContaining("up" + temp.resolve("outside")))
                .verify(TIMEOUT);

        assertThat(temp.resolve("outside")).doesNotExist();
        assertThat(names(root.resolve("images"))).isEmpty();
        assertThat(names(root.resolve("layers"))).containsExactly(image.chainId(0).substring(7));
    }

    @Test
    void removeDuringAnUnpackKeepsTheLayersTheImportFoundUnpacked() throws Exception {
        byte[] base = OciLayouts.tar(files("bin/sh", "shell"));
        OciLayouts.Image a = OciLayouts.image().layer(base);
        OciLayouts.Image b = OciLayouts.image().layer(base)
                .layer(OciLayouts.tar(Map.of("big", bytes(8 << 20, 5))), Compression.NONE);
        store.importLayout(OciLayouts.layout().tagged(a, "1").writeDirectory(temp.resolve("a"))).block(TIMEOUT);
        Path layoutB = OciLayouts.layout().tagged(b, "1").writeDirectory(temp.resolve("b"));
        CountDownLatch paused = new CountDownLatch(1);
        CountDownLatch resume = new CountDownLatch(1);
        // The import of b stops in the middle of its second layer's unpack (it found the first one unpacked) until
        // a is removed: a remove that completes then also shows that no lock is held during an unpack.
        Mono<Image> importB = store.importLayout(ImportRequest.of(layoutB).withProgress(p -> {
            if (p.layersDone() == 1 && p.bytesDone() >= (1 << 20) && paused.getCount() == 1) {
                paused.countDown();
                try {
                    resume.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        })).cache();
        importB.subscribe(image -> {}, error -> {});

        assertThat(paused.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        try {
            store.remove("a:1").block(TIMEOUT);
            assertThat(layerDir(a.chainId(0))).as("the base layer b's import uses").isDirectory();
        } finally {
            resume.countDown();
        }
        Image imported = importB.block(TIMEOUT);

        assertThat(imported.layers()).containsExactly(b.diffId(0), b.diffId(1));
        assertThat(names(root.resolve("layers"))).containsExactlyInAnyOrder(b.chainId(0).substring(7),
                b.chainId(1).substring(7));
        store.remove("b:1").block(TIMEOUT);
        assertThat(names(root.resolve("layers"))).isEmpty();
    }

    @Test
    void aCancelledImportStopsAndCleansItsScratch() throws Exception {
        OciLayouts.Image image = OciLayouts.image()
                .layer(OciLayouts.tar(Map.of("big", bytes(48 << 20, 3))), Compression.NONE);
        Path layout = OciLayouts.layout().tagged(image, "v1").writeDirectory(temp.resolve("big"));
        List<Path> scratchSeen = new ArrayList<>();
        Mono<Image> started = Mono.create(sink -> {
            var subscription = store.importLayout(ImportRequest.of(layout).withProgress(p -> {
                if (p.bytesDone() >= (1 << 20) && scratchSeen.isEmpty()) {
                    scratchSeen.addAll(names(root.resolve("tmp")).stream().map(root.resolve("tmp")::resolve)
                            .toList());
                    sink.success();
                }
            })).subscribe();
            sink.onDispose(subscription);
        });

        StepVerifier.create(started).verifyComplete();

        assertThat(scratchSeen).hasSize(1);
        awaitEmpty(root.resolve("tmp"));
        assertThat(names(root.resolve("layers"))).isEmpty();
        assertThat(store.list().collectList().block(TIMEOUT)).isEmpty();
    }

    @Test
    void aFullDiskIsResourceExhaustedAndLeavesNothing() throws Exception {
        Path archive = OciLayouts.layout().tagged(OciLayouts.image()
                .layer(OciLayouts.tar(Map.of("big", bytes(2 << 20, 4)))), "v1").writeTar(temp.resolve("big.tar"));
        Map<String, byte[]> many = new LinkedHashMap<>();
        for (int i = 0; i < 64; i++) {
            many.put("f" + i, new byte[] {(byte) i});
        }
        Path manyFiles = OciLayouts.layout().tagged(OciLayouts.image().layer(OciLayouts.tar(many)), "v1")
                .writeDirectory(temp.resolve("many"));
        Files.createDirectories(root);
        LinuxCalls.mount("tmpfs", root.toString(), "tmpfs", 0, "size=1m,nr_inodes=48,mode=0700");
        try {
            StepVerifier.create(store.importLayout(archive))
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(ResourceExhaustedException.class)
                            .hasMessageContaining("no space left").hasMessageContaining(archive.toString()))
                    .verify(TIMEOUT);
            StepVerifier.create(store.importLayout(manyFiles))
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(ResourceExhaustedException.class)
                            .hasMessageContaining(manyFiles.toString()))
                    .verify(TIMEOUT);

            assertThat(names(root.resolve("tmp"))).isEmpty();
            assertThat(names(root.resolve("layers"))).isEmpty();
            assertThat(names(root.resolve("images"))).isEmpty();
        } finally {
            LinuxCalls.umount2(root.toString(), LinuxCalls.MNT_DETACH);
        }
    }

    /**
     * An import whose layers fit to the last page and whose record did not failed as no space and left the record's
     * temporary file in {@code images/} for good (only an import of the same name wrote over it); a crash during a
     * record's write left one too. It goes with the failed write, and the next import or remove deletes any other.
     */
    @Test
    void aRecordThatDoesNotFitLeavesNoTemporaryFileAndACrashsIsSwept() throws Exception {
        Files.createDirectories(root);
        LinuxCalls.mount("tmpfs", root.toString(), "tmpfs", 0, "size=1m,mode=0700");
        try {
            // The largest layer that fits leaves no page for the record: grown a page at a time until it is so.
            boolean recordFailed = false;
            for (int pages = 248; pages <= 256 && !recordFailed; pages++) {
                byte[] layer = OciLayouts.tar(Map.of("big", bytes(pages * 4096, pages)));
                Path layout = OciLayouts.layout().tagged(OciLayouts.image().layer(layer, Compression.NONE), "v1")
                        .writeDirectory(temp.resolve("p" + pages));
                try {
                    Image imported = store.importLayout(layout).block(TIMEOUT);
                    store.remove(imported.name()).block(TIMEOUT);
                } catch (ResourceExhaustedException full) {
                    // Failed at the record when its layer is in.
                    recordFailed = !names(root.resolve("layers")).isEmpty();
                }
                assertThat(names(root.resolve("images"))).as("records of a layer of %d pages", pages).isEmpty();
            }
            assertThat(recordFailed).as("an import failed writing its record").isTrue();

            Path crashed = Files.createFile(root.resolve("images").resolve("0".repeat(64) + ".json.tmp"));
            StepVerifier.create(store.remove("nothing:v1")).expectError(NotFoundException.class).verify(TIMEOUT);
            assertThat(crashed).as("a crashed write's temporary file").doesNotExist();
        } finally {
            LinuxCalls.umount2(root.toString(), LinuxCalls.MNT_DETACH);
        }
    }

    /**
     * The layers an import renamed in before it failed (no space for the next one, or its record) or was killed
     * are named by no image: only a successful remove of another image collected them, so a store with no other
     * image kept that space for good, as no call could free it. A remove of an unknown name collects them too, and
     * still fails as not found.
     */
    @Test
    void aRemoveOfAnUnknownNameCollectsTheLayersNothingNames() throws IOException {
        OciLayouts.Image kept = threeLayers();
        store.importLayout(OciLayouts.layout().tagged(kept, "v1").writeDirectory(temp.resolve("kept")))
                .block(TIMEOUT);
        Path orphan = Files.createDirectories(root.resolve("layers").resolve("c".repeat(64)).resolve("etc"));

        StepVerifier.create(store.remove("failed:v1")).expectError(NotFoundException.class).verify(TIMEOUT);

        assertThat(orphan.getParent()).as("a layer no image names").doesNotExist();
        assertThat(names(root.resolve("layers"))).as("the layers of the image there is").containsExactlyInAnyOrder(
                kept.chainId(0).substring(7), kept.chainId(1).substring(7), kept.chainId(2).substring(7));
        assertThat(names(root.resolve("tmp"))).isEmpty();
    }

    @Test
    void aRemoveOnADiskWithNoInodeLeftFreesTheImagesLayers() throws Exception {
        Path layout = OciLayouts.layout().tagged(OciLayouts.image().layer(OciLayouts.tar("a", "a"))
                .layer(OciLayouts.tar("b", "b")), "v1").writeDirectory(temp.resolve("small"));
        Files.createDirectories(root);
        LinuxCalls.mount("tmpfs", root.toString(), "tmpfs", 0, "size=4m,nr_inodes=64,mode=0700");
        try {
            store.importLayout(layout).block(TIMEOUT);
            Path fill = Files.createDirectory(root.resolve("fill"));
            int files = 0;
            try {
                while (files < 1000) {
                    Files.createFile(fill.resolve("f" + files));
                    files++;
                }
            } catch (IOException full) {
                assertThat(full).hasMessageContaining("No space left");
            }

            // The disk is full: removing an image is how room is made, so it must not need a new inode itself.
            StepVerifier.create(store.remove("small:v1")).expectComplete().verify(TIMEOUT);

            assertThat(names(root.resolve("images"))).isEmpty();
            assertThat(names(root.resolve("layers"))).as("the layers are freed").isEmpty();
            assertThat(names(root.resolve("tmp"))).isEmpty();
            Files.createFile(fill.resolve("after"));
        } finally {
            LinuxCalls.umount2(root.toString(), LinuxCalls.MNT_DETACH);
        }
    }

    @Test
    void aStoreDirectoryThatIsASymlinkIsRefusedAndWhatItPointsAtIsLeftAlone() throws IOException {
        Path layout = OciLayouts.layout().tagged(threeLayers(), "v1").writeDirectory(temp.resolve("hello"));
        Path userData = Files.createDirectories(temp.resolve("user-data"));
        Files.writeString(userData.resolve("notes.txt"), "precious");
        Files.createDirectories(userData.resolve("photos"));
        Files.createDirectories(root);
        Files.createSymbolicLink(root.resolve("tmp"), userData);

        StepVerifier.create(store.importLayout(layout))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining(root.resolve("tmp").toString()).hasMessageContaining("symlink"))
                .verify(TIMEOUT);
        StepVerifier.create(store.remove("hello:v1"))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining(root.resolve("tmp").toString()))
                .verify(TIMEOUT);

        assertThat(names(userData)).containsExactly("notes.txt", "photos");
        Files.delete(root.resolve("tmp"));
    }

    @Test
    void aLayerFileLargerThanTheFreeSpaceIsResourceExhaustedNotAnInvalidImage() throws Exception {
        OciLayouts.Image image = OciLayouts.image().layer(OciLayouts.tar(Map.of("big", bytes(2 << 20, 6))));
        Path layout = OciLayouts.layout().tagged(image, "v1").writeDirectory(temp.resolve("big"));
        Files.createDirectories(root);
        LinuxCalls.mount("tmpfs", root.toString(), "tmpfs", 0, "size=1m,mode=0700");
        try {
            StepVerifier.create(store.importLayout(layout))
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(ResourceExhaustedException.class)
                            .hasMessageContaining("no space left").hasMessageContaining(layout.toString())
                            .hasMessageContaining("entry \"big\""))
                    .verify(TIMEOUT);

            assertThat(names(root.resolve("tmp"))).isEmpty();
            assertThat(names(root.resolve("layers"))).isEmpty();
        } finally {
            LinuxCalls.umount2(root.toString(), LinuxCalls.MNT_DETACH);
        }
    }

    @Test
    void aRemoveThatFailsStillDeletesWhatDeadImportsLeft() throws IOException {
        Path dead = Files.createDirectories(root.resolve("tmp").resolve("killed-import"));
        Files.write(dead.resolve("layer-0"), bytes(1 << 20, 7));
        Files.writeString(dead.resolve("owner"), "");

        StepVerifier.create(store.remove("nothing:here"))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(NotFoundException.class)
                        .hasMessageContaining("nothing:here"))
                .verify(TIMEOUT);

        assertThat(names(root.resolve("tmp"))).isEmpty();
    }

    @Test
    void aDamagedRecordIsLeftOutRemovableByNameAndKeepsEveryLayer() throws IOException {
        OciLayouts.Image a = OciLayouts.image().layer(OciLayouts.tar("a", "a"));
        OciLayouts.Image b = OciLayouts.image().layer(OciLayouts.tar("b", "b"));
        Path layoutA = OciLayouts.layout().tagged(a, "v1").writeDirectory(temp.resolve("a"));
        Path layoutB = OciLayouts.layout().tagged(b, "v1").writeDirectory(temp.resolve("b"));
        store.importLayout(layoutA).block(TIMEOUT);
        store.importLayout(layoutB).block(TIMEOUT);
        // Cut short, as a full disk or another version of the store could leave it.
        Path damaged = root.resolve("images").resolve(BlobInput.sha256Hex("b:v1") + ".json");
        Files.writeString(damaged, "{\"name\":\"b:v1\"");

        assertThat(store.list().map(Image::name).collectList().block(TIMEOUT)).containsExactly("a:v1");
        assertThat(store.importLayout(layoutA).block(TIMEOUT).name()).as("import again").isEqualTo("a:v1");
        StepVerifier.create(store.get("b:v1"))
                .expectErrorSatisfies(e -> assertThat(e).hasMessageContaining(damaged.toString())
                        .hasMessageContaining("damaged"))
                .verify(TIMEOUT);
        store.remove("a:v1").block(TIMEOUT);
        assertThat(names(root.resolve("layers"))).as("nothing collected while a record cannot be read")
                .containsExactlyInAnyOrder(a.chainId(0).substring(7), b.chainId(0).substring(7));

        // A container started before leases listed their layers is kept only through its image's record, which may
        // be the damaged one: its remove waits for that container.
        Path oldBundle = temp.resolve("state").resolve("default").resolve("old");
        try (FileLock _ = new Leases(root.resolve("leases")).add(b.digest(), oldBundle, List.of())) {
            StepVerifier.create(store.remove("b:v1"))
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                            .hasMessageContaining("b:v1").hasMessageContaining(oldBundle.toString()))
                    .verify(TIMEOUT);
        }
        assertThat(Files.exists(damaged)).as("the damaged record, kept").isTrue();

        store.remove("b:v1").block(TIMEOUT);

        assertThat(names(root.resolve("images"))).isEmpty();
        assertThat(store.importLayout(layoutB).block(TIMEOUT).name()).isEqualTo("b:v1");
        store.remove("b:v1").block(TIMEOUT);
        assertThat(names(root.resolve("layers"))).as("collected once every record reads").isEmpty();
    }

    @Test
    void anImportWaitsForTheLockAnotherProcessHolds() throws Exception {
        Path layout = OciLayouts.layout().tagged(threeLayers(), "v1").writeDirectory(temp.resolve("hello"));
        Files.createDirectories(root);
        Process holder = new ProcessBuilder("flock", root.resolve("lock").toString(), "-c", "echo held; exec cat")
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try (BufferedReader lines = new BufferedReader(new InputStreamReader(holder.getInputStream(), UTF_8))) {
            assertThat(lines.readLine()).isEqualTo("held");

            StepVerifier.create(store.importLayout(layout))
                    .expectSubscription()
                    .expectNoEvent(Duration.ofMillis(500))
                    .then(() -> closeQuietly(holder))
                    .assertNext(image -> assertThat(image.name()).isEqualTo("hello:v1"))
                    .verifyComplete();
        } finally {
            holder.destroyForcibly();
            holder.waitFor();
        }
        assertThat(holder.exitValue()).isZero();
    }

    private static void closeQuietly(Process process) {
        try {
            process.getOutputStream().close();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private void awaitEmpty(Path dir) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!names(dir).isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertThat(names(dir)).as(dir + " emptied").isEmpty();
    }

    static Map<String, byte[]> files(String... namesAndTexts) {
        Map<String, byte[]> files = new LinkedHashMap<>();
        for (int i = 0; i < namesAndTexts.length; i += 2) {
            files.put(namesAndTexts[i], namesAndTexts[i + 1].getBytes(UTF_8));
        }
        return files;
    }

    /** {@code size} bytes that gzip cannot shrink, the same for one seed. */
    static byte[] bytes(int size, long seed) {
        byte[] bytes = new byte[size];
        new Random(seed).nextBytes(bytes);
        return bytes;
    }

    private Path layerDir(String diffId) {
        return root.resolve("layers").resolve(diffId.substring(7));
    }

    static List<String> names(Path dir) {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.map(p -> p.getFileName().toString()).sorted().toList();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
