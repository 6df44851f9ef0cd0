package org.shimmer.runtime.linux.layer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.image.InvalidImageException;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.TarLayers;

/**
 * Layer blobs by media type, end to end: compressed the way real tools do it (several gzip members, several zstd
 * frames made by the {@code zstd} CLI), decompressed and unpacked; damaged blobs fail with an error naming the
 * problem.
 */
class DecompressionTest {

    private static final String OCI = "application/vnd.oci.image.layer.v1.tar";

    @TempDir
    Path temp;

    private Map<Integer, String> fdsBefore;

    @BeforeEach
    void countFds() {
        fdsBefore = Leaks.openFds();
    }

    @AfterEach
    void nothingLeaked() throws Exception {
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(2))).isEmpty();
    }

    @Test
    void plainTarIsTheStreamItself() throws IOException {
        InputStream blob = new ByteArrayInputStream(tar());
        assertThat(Decompression.open(blob, OCI)).isSameAs(blob);
        assertThat(Decompression.open(blob, "application/vnd.oci.image.layer.nondistributable.v1.tar"))
                .isSameAs(blob);
    }

    @Test
    void gzipOfSeveralMembersUnpacks() throws IOException {
        byte[] tar = tar();
        byte[] blob = concat(gzip(Arrays.copyOfRange(tar, 0, 1000)), gzip(Arrays.copyOfRange(tar, 1000, tar.length)));
        for (String type : new String[] {OCI + "+gzip", "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"}) {
            try (InputStream in = Decompression.open(new ByteArrayInputStream(blob), type)) {
                assertThat(in.readAllBytes()).as(type).isEqualTo(tar);
            }
        }
        Path target = Files.createDirectory(temp.resolve("layer"));
        try (InputStream in = Decompression.open(new ByteArrayInputStream(blob), OCI + "+gzip")) {
            LayerUnpacker.unpack(in, target, "sha256:gz");
        }
        assertThat(Files.readString(target.resolve("etc/hostname"))).isEqualTo("box\n");
    }

    @Test
    void truncatedGzipFailsNamingTheProblem() throws IOException {
        byte[] blob = gzip(tar());
        try (InputStream in = Decompression.open(new ByteArrayInputStream(Arrays.copyOf(blob, blob.length / 2)),
                OCI + "+gzip")) {
            assertThatThrownBy(in::readAllBytes)
                    .isInstanceOf(IOException.class)
                    .hasMessage("gzip: truncated stream: the input ends inside a member");
        }
    }

    @Test
    void corruptGzipFailsNamingTheProblem() throws IOException {
        byte[] blob = gzip(tar());
        blob[blob.length - 5] ^= 0x55;
        try (InputStream in = Decompression.open(new ByteArrayInputStream(blob), OCI + "+gzip")) {
            assertThatThrownBy(in::readAllBytes)
                    .isInstanceOf(IOException.class)
                    .hasMessageStartingWith("gzip: corrupt stream: ")
                    .hasMessageContaining("CRC");
        }
    }

    @Test
    void notGzipFailsAtOpen() {
        assertThatThrownBy(() -> Decompression.open(new ByteArrayInputStream(tar()), OCI + "+gzip"))
                .isInstanceOf(IOException.class)
                .hasMessageStartingWith("gzip: corrupt stream: ");
    }

    @Test
    void truncatedGzipLayerFailsNamingTheLayerEntryAndProblem() throws IOException {
        byte[] blob = gzip(tar());
        Path target = Files.createDirectory(temp.resolve("layer"));
        try (InputStream in = Decompression.open(new ByteArrayInputStream(Arrays.copyOf(blob, blob.length - 30)),
                OCI + "+gzip")) {
            assertThatThrownBy(() -> LayerUnpacker.unpack(in, target, "sha256:cut"))
                    .isInstanceOf(IOException.class)
                    .hasMessageStartingWith("layer sha256:cut: ")
                    .hasMessageContaining("gzip: truncated stream");
        }
    }

    @Test
    void zstdOfSeveralFramesFromTheCliUnpacks() throws Exception {
        byte[] tar = tar();
        byte[] blob = concat(zstdCli(Arrays.copyOfRange(tar, 0, 1000)),
                zstdCli(Arrays.copyOfRange(tar, 1000, tar.length)));
        Path target = Files.createDirectory(temp.resolve("layer"));
        try (InputStream in = Decompression.open(new ByteArrayInputStream(blob), OCI + "+zstd")) {
            LayerUnpacker.unpack(in, target, "sha256:zst");
        }
        assertThat(Files.readString(target.resolve("etc/hostname"))).isEqualTo("box\n");
        try (InputStream in = Decompression.open(new ByteArrayInputStream(blob),
                "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd")) {
            assertThat(in.readAllBytes()).isEqualTo(tar);
        }
    }

    @Test
    void unknownMediaTypeIsRefusedByName() {
        assertThatThrownBy(() -> Decompression.open(new ByteArrayInputStream(new byte[0]),
                "application/vnd.oci.image.layer.v1.tar+bzip2"))
                .isInstanceOf(InvalidImageException.class)
                .hasMessage("unsupported layer media type \"application/vnd.oci.image.layer.v1.tar+bzip2\"");
    }

    private static byte[] tar() {
        return TarLayers.layer()
                .dir("etc", 0755)
                .file("etc/hostname", "box\n", 0644)
                .file("etc/motd", "welcome ".repeat(500), 0644)
                .bytes();
    }

    static byte[] gzip(byte[] data) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream gzip = new GZIPOutputStream(out)) {
            gzip.write(data);
        }
        return out.toByteArray();
    }

    /** A tar padded to 5 x 128 KiB (zero blocks after its end, still valid) through zstd into the unpacker. */
    @Test
    void zstdTarOfWholeOutputBuffersUnpacks() throws Exception {
        byte[] tar = Arrays.copyOf(tar(), 5 * 128 * 1024);
        Path target = Files.createDirectory(temp.resolve("layer"));
        try (InputStream in = Decompression.open(new ByteArrayInputStream(zstdCli(tar)), OCI + "+zstd")) {
            LayerUnpacker.unpack(in, target, "sha256:zst");
        }
        assertThat(Files.readString(target.resolve("etc/hostname"))).isEqualTo("box\n");
    }

    /** {@code data} compressed by the {@code zstd} command, one frame. */
    static byte[] zstdCli(byte[] data) throws IOException, InterruptedException {
        Path in = Files.createTempFile("shimmer-zstd", ".in");
        Path out = Files.createTempFile("shimmer-zstd", ".zst");
        try {
            Files.write(in, data);
            Process zstd = new ProcessBuilder("zstd", "-q", "-f", "-o", out.toString(), in.toString())
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .start();
            zstd.getOutputStream().close();
            assertThat(zstd.waitFor()).as("zstd exit status").isZero();
            return Files.readAllBytes(out);
        } finally {
            Files.deleteIfExists(in);
            Files.deleteIfExists(out);
        }
    }

    static byte[] concat(byte[] first, byte[] second) {
        byte[] both = Arrays.copyOf(first, first.length + second.length);
        System.arraycopy(second, 0, both, first.length, second.length);
        return both;
    }
}
