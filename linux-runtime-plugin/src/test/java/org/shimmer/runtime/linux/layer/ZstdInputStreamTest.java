package org.shimmer.runtime.linux.layer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.shimmer.runtime.linux.layer.DecompressionTest.concat;
import static org.shimmer.runtime.linux.layer.DecompressionTest.zstdCli;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.linux.testing.Leaks;

/** The system libzstd through FFM, against frames the {@code zstd} CLI wrote (with its content checksum). */
class ZstdInputStreamTest {

    /** 3 MiB, half random and half text: many times zstd's 128 KiB output buffer, so every refill path runs. */
    private static byte[] data;
    private static byte[] frame;

    private Map<Integer, String> fdsBefore;

    @BeforeAll
    static void compress() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Random random = new Random(12);
        byte[] noise = new byte[1 << 20];
        random.nextBytes(noise);
        out.write(noise);
        out.write("a layer is mostly text, repeated; ".repeat(60_000).getBytes());
        random.nextBytes(noise);
        out.write(noise);
        data = out.toByteArray();
        frame = zstdCli(data);
    }

    @BeforeEach
    void countFds() {
        fdsBefore = Leaks.openFds();
    }

    @AfterEach
    void nothingLeaked() throws Exception {
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(2))).isEmpty();
    }

    @Test
    void decompressesOneLargeFrame() throws IOException {
        try (InputStream in = new ZstdInputStream(new ByteArrayInputStream(frame))) {
            assertThat(in.readAllBytes()).isEqualTo(data);
            assertThat(in.read()).isEqualTo(-1);
        }
    }

    /** The output ends exactly where libzstd's 128 KiB output buffer is full: it was reported "truncated". */
    @Test
    void outputOfExactlyWholeOutputBuffersEnds() throws Exception {
        for (int size : new int[] {131072, 262144}) {
            byte[] zeros = new byte[size];
            try (InputStream in = new ZstdInputStream(new ByteArrayInputStream(zstdCli(zeros)))) {
                assertThat(in.readAllBytes()).as("%d zeros", size).isEqualTo(zeros);
            }
        }
    }

    @Test
    void decompressesSeveralFramesInOneStream() throws Exception {
        byte[] small = "and a small frame after it".getBytes();
        byte[] blob = concat(concat(frame, zstdCli(small)), frame);
        try (InputStream in = new ZstdInputStream(new ByteArrayInputStream(blob))) {
            assertThat(in.readAllBytes()).isEqualTo(concat(concat(data, small), data));
        }
    }

    @Test
    void byteByByteReadsGiveTheSameBytes() throws Exception {
        byte[] text = "read one byte at a time".getBytes();
        try (InputStream in = new ZstdInputStream(new ByteArrayInputStream(zstdCli(text)))) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            for (int b = in.read(); b >= 0; b = in.read()) {
                out.write(b);
            }
            assertThat(out.toByteArray()).isEqualTo(text);
        }
    }

    @Test
    void truncatedStreamFails() throws IOException {
        try (InputStream in = new ZstdInputStream(new ByteArrayInputStream(Arrays.copyOf(frame, frame.length / 2)))) {
            assertThatThrownBy(in::readAllBytes)
                    .isInstanceOf(IOException.class)
                    .hasMessage("zstd: truncated stream: the input ends inside a frame");
        }
    }

    @Test
    void emptyStreamIsTruncated() throws IOException {
        try (InputStream in = new ZstdInputStream(new ByteArrayInputStream(new byte[0]))) {
            assertThatThrownBy(in::readAllBytes).hasMessageContaining("truncated");
        }
    }

    @Test
    void corruptFrameFailsNamingZstdsError() throws IOException {
        byte[] corrupt = frame.clone();
        for (int i = corrupt.length / 2; i < corrupt.length / 2 + 64; i++) {
            corrupt[i] ^= 0x5a;
        }
        try (InputStream in = new ZstdInputStream(new ByteArrayInputStream(corrupt))) {
            assertThatThrownBy(in::readAllBytes)
                    .isInstanceOf(IOException.class)
                    .hasMessageStartingWith("zstd: corrupt stream: ")
                    .hasMessageMatching("zstd: corrupt stream: .*(Corrupted|checksum|corrupt).*");
        }
    }

    @Test
    void garbageAfterTheLastFrameFails() throws IOException {
        byte[] blob = concat(frame, "not zstd".getBytes());
        try (InputStream in = new ZstdInputStream(new ByteArrayInputStream(blob))) {
            assertThatThrownBy(in::readAllBytes).hasMessage("zstd: corrupt stream: Unknown frame descriptor");
        }
    }

    @Test
    void aMissingLibraryIsAClearError() {
        assertThatThrownBy(() -> Zstd.load("libzstd-absent.so.1"))
                .isInstanceOf(IOException.class)
                .hasMessageStartingWith("zstd layers need the system library libzstd-absent.so.1 (Debian package "
                        + "libzstd1), which could not be loaded: ");
    }

    @Test
    void closeFreesOnceAndClosesTheSourceOnce() throws IOException {
        AtomicInteger sourceCloses = new AtomicInteger();
        InputStream source = new ByteArrayInputStream(frame) {
            @Override
            public void close() {
                sourceCloses.incrementAndGet();
            }
        };
        InputStream in = new ZstdInputStream(source);
        assertThat(in.read()).isEqualTo(Byte.toUnsignedInt(data[0]));
        in.close();
        in.close();
        assertThat(sourceCloses).hasValue(1);
        assertThatThrownBy(in::read).isInstanceOf(IOException.class).hasMessage("zstd stream is closed");
    }
}
