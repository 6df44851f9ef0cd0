package org.shimmer.runtime.linux.image;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.image.ImportRequest;
import org.shimmer.runtime.image.InvalidImageException;
import org.shimmer.runtime.linux.layer.XattrTarInputStream;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.OciLayouts;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;
import reactor.test.StepVerifier;

/**
 * What a hostile layout costs at most: a DAG of indexes, a sparse archive entry, an oversized index, a blob that
 * is a FIFO or a directory. Each is refused, named, in well under the test's timeout, leaving nothing behind.
 */
class LayoutLimitsTest {

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
        io = Schedulers.newBoundedElastic(4, 1000, "limits-test-io");
        root = temp.resolve("images");
        store = new ImageStore(root, io);
    }

    @AfterEach
    void tearDown() throws Exception {
        io.dispose();
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5))).as("descriptors left open").isEmpty();
        assertThat(ImageStoreTest.names(root.resolve("tmp"))).as("scratch left in tmp").isEmpty();
        assertThat(ImageStoreTest.names(root.resolve("images"))).isEmpty();
        assertThat(ImageStoreTest.names(root.resolve("layers"))).isEmpty();
    }

    @Test
    void aDagOfNestedIndexesStopsAtTheDescriptorCap() throws IOException {
        // Three levels of indexes each listing the next 2000 times: 8e9 paths through 4 small blobs.
        Path layout = Files.createDirectories(temp.resolve("fan/blobs/sha256")).getParent().getParent();
        Files.writeString(layout.resolve("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        ObjectNode leaves = JSON.createObjectNode();
        ArrayNode manifests = leaves.putArray("manifests");
        for (int i = 0; i < 2000; i++) {
            ObjectNode manifest = manifests.addObject().put("mediaType", Descriptor.OCI_MANIFEST)
                    .put("digest", "sha256:" + "a".repeat(64)).put("size", 10);
            manifest.putObject("platform").put("os", "linux").put("architecture", "arm64");
        }
        ObjectNode child = putIndex(layout, leaves);
        for (int level = 0; level < 2; level++) {
            ObjectNode index = JSON.createObjectNode();
            ArrayNode list = index.putArray("manifests");
            for (int i = 0; i < 2000; i++) {
                list.add(child.deepCopy());
            }
            child = putIndex(layout, index);
        }
        ObjectNode top = JSON.createObjectNode();
        top.putArray("manifests").add(child);
        Files.write(layout.resolve("index.json"), JSON.writeValueAsBytes(top));

        StepVerifier.create(store.importLayout(ImportRequest.of(layout).withName("fan:1")))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(NotFoundException.class)
                        .hasMessageEndingWith("(it has linux/arm64)"))
                .verify(TIMEOUT);
    }

    @Test
    void indexesListingMoreDescriptorsThanTheCapAreRefused() throws IOException {
        Path layout = Files.createDirectories(temp.resolve("wide/blobs/sha256")).getParent().getParent();
        Files.writeString(layout.resolve("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        ObjectNode top = JSON.createObjectNode();
        ArrayNode list = top.putArray("manifests");
        for (int i = 0; i < 6; i++) {
            ObjectNode index = JSON.createObjectNode();
            ArrayNode manifests = index.putArray("manifests");
            for (int j = 0; j < 2000; j++) {
                ObjectNode manifest = manifests.addObject().put("mediaType", Descriptor.OCI_MANIFEST)
                        .put("digest", "sha256:" + "a".repeat(64)).put("size", 10);
                manifest.putObject("platform").put("os", "linux").put("architecture", "arm" + i);
            }
            list.add(putIndex(layout, index));
        }
        Files.write(layout.resolve("index.json"), JSON.writeValueAsBytes(top));

        StepVerifier.create(store.importLayout(ImportRequest.of(layout).withName("wide:1")))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("more than " + Layout.MAX_DESCRIPTORS + " descriptors"))
                .verify(TIMEOUT);
    }

    @Test
    void aSparseArchiveEntryIsRefusedBeforeAByteIsExpanded() throws Exception {
        Path source = Files.createDirectories(temp.resolve("sparse/blobs/sha256")).getParent().getParent();
        Files.writeString(source.resolve("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        Files.writeString(source.resolve("index.json"), "{\"manifests\":[]}");
        Path big = source.resolve("blobs/sha256").resolve("b".repeat(64));
        assertThat(new ProcessBuilder("truncate", "-s", "2000M", big.toString()).start().waitFor()).isZero();
        Path archive = temp.resolve("sparse.tar");
        assertThat(new ProcessBuilder("tar", "--sparse", "--format=pax", "-C", source.toString(), "-cf",
                archive.toString(), "oci-layout", "index.json", "blobs").start().waitFor()).isZero();
        Files.delete(big);
        assertThat(Files.size(archive)).isLessThan(1 << 20);

        StepVerifier.create(store.importLayout(ImportRequest.of(archive).withName("s:1")))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("blobs/sha256/" + "b".repeat(64))
                        .hasMessageContaining("sparse"))
                .verify(TIMEOUT);
    }

    @Test
    void anArchivedIndexOverTheJsonCapIsRefusedWhileExtracting() throws IOException {
        Path archive = temp.resolve("big-index.tar");
        byte[] index = ("{\"manifests\":[]," + "\"pad\":\"" + "x".repeat(Layout.MAX_JSON) + "\"}").getBytes(UTF_8);
        try (OutputStream out = Files.newOutputStream(archive);
                TarArchiveOutputStream tar = new TarArchiveOutputStream(out)) {
            for (Map.Entry<String, byte[]> file : Map.of("oci-layout",
                    "{\"imageLayoutVersion\":\"1.0.0\"}".getBytes(UTF_8), "index.json", index).entrySet()) {
                TarArchiveEntry entry = new TarArchiveEntry(file.getKey());
                entry.setSize(file.getValue().length);
                tar.putArchiveEntry(entry);
                tar.write(file.getValue());
                tar.closeArchiveEntry();
            }
        }

        StepVerifier.create(store.importLayout(ImportRequest.of(archive).withName("i:1")))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("\"index.json\" is over " + Layout.MAX_JSON + " bytes"))
                .verify(TIMEOUT);
    }

    @Test
    void anArchivedLongNameOverTheHeaderCapIsRefusedBeforeItIsHeld() throws IOException {
        // On an entry the import skips anyway: commons-compress held the whole name in memory, several times over.
        byte[] name = new byte[XattrTarInputStream.MAX_HEADER + 1];
        Arrays.fill(name, (byte) 'n');
        TarArchiveEntry longName = new TarArchiveEntry("././@LongLink", TarConstants.LF_GNUTYPE_LONGNAME, true);
        longName.setSize(name.length);
        byte[] header = new byte[512];
        longName.writeEntryHeader(header);
        Path archive = temp.resolve("long-name.tar");
        try (OutputStream out = Files.newOutputStream(archive)) {
            out.write(header);
            out.write(Arrays.copyOf(name, (name.length + 511) / 512 * 512));
            writeSkippedEntryAndALayout(out);
        }

        StepVerifier.create(store.importLayout(ImportRequest.of(archive).withName("long:1")))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("entry \"././@LongLink\"")
                        .hasMessageContaining("header of " + name.length + " bytes is more than the "
                                + XattrTarInputStream.MAX_HEADER + " taken"))
                .verify(TIMEOUT);
    }

    /**
     * Each header is read by commons-compress calling itself for the entry after it: 20 000 GNU long names of one
     * byte before one entry (a 20 MiB archive) overflowed the importer's stack, an UnavailableException.
     */
    @Test
    void anArchivedChainOfHeadersBeforeOneEntryIsRefusedBeforeItOverflowsTheStack() throws IOException {
        TarArchiveEntry longName = new TarArchiveEntry("././@LongLink", TarConstants.LF_GNUTYPE_LONGNAME, true);
        longName.setSize(1);
        byte[] header = new byte[1024];
        longName.writeEntryHeader(header);
        header[512] = 'n';
        Path archive = temp.resolve("header-chain.tar");
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(archive), 1 << 20)) {
            for (int i = 0; i < 20_000; i++) {
                out.write(header);
            }
            writeSkippedEntryAndALayout(out);
        }

        StepVerifier.create(store.importLayout(ImportRequest.of(archive).withName("chain:1")))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("entry \"././@LongLink\"")
                        .hasMessageContaining("more than " + XattrTarInputStream.MAX_HEADERS
                                + " headers before one entry"))
                .verify(TIMEOUT);
    }

    /** Writes, after what {@code out} holds, an entry named "skipped" and then a one-layer image's layout. */
    private static void writeSkippedEntryAndALayout(OutputStream out) throws IOException {
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(out)) {
            tar.putArchiveEntry(new TarArchiveEntry("skipped"));
            tar.closeArchiveEntry();
            Map<String, byte[]> files = OciLayouts.layout()
                    .tagged(OciLayouts.image().layer(OciLayouts.tar("x", "x")), "1").files();
            for (Map.Entry<String, byte[]> file : files.entrySet()) {
                TarArchiveEntry entry = new TarArchiveEntry(file.getKey());
                entry.setSize(file.getValue().length);
                tar.putArchiveEntry(entry);
                tar.write(file.getValue());
                tar.closeArchiveEntry();
            }
        }
    }

    @Test
    void anImageOfMoreLayersThanAnOverlayStacksIsRefusedBeforeAnyIsUnpacked() throws IOException {
        OciLayouts.Image image = OciLayouts.image();
        byte[] tar = OciLayouts.tar("x", "x");
        for (int i = 0; i <= Layout.MAX_LAYERS; i++) {
            image.layer(tar, OciLayouts.Compression.NONE);
        }
        Path layout = OciLayouts.layout().tagged(image, "1").writeDirectory(temp.resolve("tall"));

        StepVerifier.create(store.importLayout(ImportRequest.of(layout).withName("tall:1")))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("blob " + image.digest())
                        .hasMessageContaining((Layout.MAX_LAYERS + 1) + " layers, more than the "
                                + Layout.MAX_LAYERS + " an overlay can stack"))
                .verify(TIMEOUT);
    }

    @Test
    void aFifoBlobIsAnInvalidImageNamingIt() throws IOException {
        OciLayouts.Image image = OciLayouts.image().layer(OciLayouts.tar("x", "x"));
        Path layout = OciLayouts.layout().tagged(image, "1").writeDirectory(temp.resolve("fifo"));
        Path blob = layout.resolve("blobs/sha256").resolve(image.layerDigest(0).substring(7));
        Files.delete(blob);
        LinuxCalls.mkfifo(blob, 0600);

        StepVerifier.create(store.importLayout(ImportRequest.of(layout).withName("fifo:1")))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("blob " + image.layerDigest(0))
                        .hasMessageContaining("not a regular file"))
                .verify(TIMEOUT);
    }

    /**
     * The check came after the open, and an open has effects: a FIFO's writer was let through (and a symlink to
     * {@code /dev/watchdog} would start the host's watchdog). A writer waiting on the FIFO blob is still waiting once
     * the blob was refused.
     */
    @Test
    void aFifoBlobIsRefusedWithoutBeingOpened() throws Exception {
        OciLayouts.Image image = OciLayouts.image().layer(OciLayouts.tar("x", "x"));
        Path layout = OciLayouts.layout().tagged(image, "1").writeDirectory(temp.resolve("unopened"));
        Path blob = layout.resolve("blobs/sha256").resolve(image.layerDigest(0).substring(7));
        Files.delete(blob);
        LinuxCalls.mkfifo(blob, 0600);
        Process writer = new ProcessBuilder("sh", "-c", "echo x > \"$0\"", blob.toString())
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD)
                .start();
        try {
            Path wchan = Path.of("/proc/" + writer.pid() + "/wchan");
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            while (!Files.readString(wchan).equals("wait_for_partner")) {
                assertThat(System.nanoTime()).as("writer waiting in the FIFO's open").isLessThan(deadline);
                Thread.onSpinWait();
            }

            StepVerifier.create(store.importLayout(ImportRequest.of(layout).withName("unopened:1")))
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                            .hasMessageContaining("blob " + image.layerDigest(0))
                            .hasMessageContaining("not a regular file"))
                    .verify(TIMEOUT);
            assertThat(writer.isAlive()).as("the writer, once the blob was refused").isTrue();
            assertThat(Files.readString(wchan)).as("where the writer waits").isEqualTo("wait_for_partner");
        } finally {
            writer.destroy();
            assertThat(writer.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        }
    }

    /**
     * A symlink may name a file of the kernel's interfaces, "regular" to fstat: /proc/kmsg took the kernel log's
     * messages from the system's logger and blocked the import, beyond any cancel, until the next one came. Such a
     * file is refused before it is read, as a blob and as a layout file.
     */
    @Test
    void aBlobOrLayoutFileLinkedIntoProcOrSysIsRefusedUnread() throws IOException {
        OciLayouts.Image image = OciLayouts.image().layer(OciLayouts.tar("x", "x"));
        Path layout = OciLayouts.layout().tagged(image, "1").writeDirectory(temp.resolve("kernel"));
        Path blob = layout.resolve("blobs/sha256").resolve(image.layerDigest(0).substring(7));
        Files.delete(blob);
        Files.createSymbolicLink(blob, Path.of("/proc/self/status"));

        StepVerifier.create(store.importLayout(ImportRequest.of(layout).withName("k:1")))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("blob " + image.layerDigest(0))
                        .hasMessageContaining("a file of the kernel's proc file system"))
                .verify(TIMEOUT);

        Files.delete(layout.resolve("index.json"));
        Files.createSymbolicLink(layout.resolve("index.json"), Path.of("/sys/kernel/uevent_seqnum"));
        StepVerifier.create(store.importLayout(ImportRequest.of(layout).withName("k:1")))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("index.json: a file of the kernel's sysfs file system"))
                .verify(TIMEOUT);
    }

    /** A namespace's file is "regular" too: its read failed with ESPIPE, an UnavailableException as if retryable. */
    @Test
    void aLayoutFileLinkedToANamespaceIsRefusedUnread() throws IOException {
        OciLayouts.Image image = OciLayouts.image().layer(OciLayouts.tar("x", "x"));
        Path layout = OciLayouts.layout().tagged(image, "1").writeDirectory(temp.resolve("namespace"));
        Files.delete(layout.resolve("index.json"));
        Files.createSymbolicLink(layout.resolve("index.json"), Path.of("/proc/self/ns/net"));

        StepVerifier.create(store.importLayout(ImportRequest.of(layout).withName("ns:1")))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("index.json: a file of the kernel's nsfs file system"))
                .verify(TIMEOUT);
    }

    /** The archive of a layout, linked into /proc, was read as a tar: /proc/kmsg blocked the import as a blob did. */
    @Test
    void aLayoutArchiveLinkedIntoProcIsRefusedUnread() throws IOException {
        Path archive = Files.createSymbolicLink(temp.resolve("kernel.tar"), Path.of("/proc/self/status"));

        StepVerifier.create(store.importLayout(ImportRequest.of(archive).withName("k:1")))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("layout archive " + archive + ": a file of the kernel's proc file"
                                + " system"))
                .verify(TIMEOUT);
    }

    @Test
    void aDirectoryBlobIsAnInvalidImageAndASymlinkToARegularFileIsRead() throws IOException {
        OciLayouts.Image image = OciLayouts.image().layer(OciLayouts.tar("x", "x"));
        Path layout = OciLayouts.layout().tagged(image, "1").writeDirectory(temp.resolve("dirblob"));
        Path blob = layout.resolve("blobs/sha256").resolve(image.layerDigest(0).substring(7));
        Path elsewhere = Files.move(blob, temp.resolve("layer.blob"));
        Files.createDirectory(blob);

        StepVerifier.create(store.importLayout(ImportRequest.of(layout).withName("d:1")))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidImageException.class)
                        .hasMessageContaining("blob " + image.layerDigest(0))
                        .hasMessageContaining("not a regular file"))
                .verify(TIMEOUT);

        Files.delete(blob);
        Files.createSymbolicLink(blob, elsewhere);
        Image imported = store.importLayout(ImportRequest.of(layout).withName("d:1")).block(TIMEOUT);
        assertThat(imported.layers()).containsExactly(image.diffId(0));
        StepVerifier.create(store.remove("d:1")).verifyComplete();
    }

    private static ObjectNode putIndex(Path layout, ObjectNode index) throws IOException {
        index.put("schemaVersion", 2).put("mediaType", Descriptor.OCI_INDEX);
        byte[] bytes = JSON.writeValueAsBytes(index);
        String digest = OciLayouts.sha256(bytes);
        Files.write(layout.resolve("blobs/sha256").resolve(digest.substring(7)), bytes);
        return JSON.createObjectNode().put("mediaType", Descriptor.OCI_INDEX).put("digest", digest)
                .put("size", bytes.length);
    }
}
