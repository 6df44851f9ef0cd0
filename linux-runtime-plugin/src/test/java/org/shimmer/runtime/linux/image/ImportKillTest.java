package org.shimmer.runtime.linux.image;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.image.ImportRequest;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.OciLayouts;
import org.shimmer.runtime.linux.testing.OciLayouts.Compression;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;

/** An import killed midway (SIGKILL of the JVM running it) leaves nothing imported, and the next one completes. */
class ImportKillTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);
    private static final int LAYERS = 4;

    @TempDir
    Path temp;

    @Test
    void anImportKilledMidwayIsSweptAndTheSameImportThenSucceeds() throws Exception {
        OciLayouts.Image image = OciLayouts.image();
        for (int i = 0; i < LAYERS; i++) {
            image.layer(OciLayouts.tar(Map.of("data" + i, ImageStoreTest.bytes(24 << 20, i))), Compression.NONE);
        }
        Path layout = OciLayouts.layout().tagged(image, "v1").writeDirectory(temp.resolve("big"));
        Path root = temp.resolve("images");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process child = new ProcessBuilder(java.toString(), "--enable-native-access=ALL-UNNAMED",
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", System.getProperty("java.class.path"),
                ImportingChild.class.getName(), root.toString(), layout.toString(), "pause")
                .redirectError(temp.resolve("child.log").toFile())
                .start();
        List<String> scratch;
        try (BufferedReader lines = new BufferedReader(new InputStreamReader(child.getInputStream(),
                StandardCharsets.UTF_8))) {
            // The child says when its first layer is unpacked, then waits halfway through the second: the kill
            // lands inside an unpack however slow this side is. It used to go on, and a test thread held up for
            // the time of three more layers found an import complete (exit 0, not 137).
            String line;
            while ((line = lines.readLine()) != null && !line.equals("midway")) {
                assertThat(line).as("the child's progress").matches("layers done: [01]");
            }
            assertThat(line).as("the child's progress (log: %s)", temp.resolve("child.log")).isNotNull();
            scratch = ImageStoreTest.names(root.resolve("tmp"));
            child.destroyForcibly();
        }
        assertThat(child.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        assertThat(child.exitValue()).as("killed by SIGKILL").isEqualTo(137);
        assertThat(scratch).as("the killed import's scratch directory").hasSize(1);
        assertThat(ImageStoreTest.names(root.resolve("tmp"))).isEqualTo(scratch);
        assertThat(ImageStoreTest.names(root.resolve("images"))).isEmpty();
        assertThat(ImageStoreTest.names(root.resolve("layers"))).hasSizeLessThan(LAYERS);

        Map<Integer, String> fds = Leaks.openFds();
        Scheduler io = Schedulers.newBoundedElastic(2, 100, "kill-test-io");
        try {
            ImageStore store = new ImageStore(root, io);
            assertThat(store.list().collectList().block(TIMEOUT)).as("nothing lists as imported").isEmpty();

            Image imported = store.importLayout(layout).block(TIMEOUT);

            assertThat(imported.digest()).isEqualTo(image.digest());
            assertThat(ImageStoreTest.names(root.resolve("tmp"))).isEmpty();
            assertThat(ImageStoreTest.names(root.resolve("layers"))).hasSize(LAYERS);
            for (int i = 0; i < LAYERS; i++) {
                assertThat(Files.size(root.resolve("layers").resolve(image.chainId(i).substring(7))
                        .resolve("data" + i))).isEqualTo(24 << 20);
            }
        } finally {
            io.dispose();
        }
        assertThat(Leaks.fdsAddedSince(fds, Duration.ofSeconds(5))).as("descriptors left open").isEmpty();
    }

    /**
     * The child JVM: imports args[1] into the store at args[0], printing each layer done. With a third argument,
     * {@code pause}, it says "midway" halfway through the second layer's bytes and waits there, inside the unpack,
     * until its stdin ends: for a kill (the progress is reported on the thread that unpacks).
     */
    public static final class ImportingChild {
        public static void main(String[] args) {
            boolean pause = args.length > 2 && args[2].equals("pause");
            Scheduler io = Schedulers.newBoundedElastic(2, 100, "child-io");
            List<Integer> said = new ArrayList<>();
            new ImageStore(Path.of(args[0]), io).importLayout(ImportRequest.of(Path.of(args[1]))
                    .withProgress(progress -> {
                        if (!said.contains(progress.layersDone())) {
                            said.add(progress.layersDone());
                            System.out.println("layers done: " + progress.layersDone());
                            System.out.flush();
                        }
                        if (pause && progress.layersDone() == 1
                                && 2 * progress.bytesDone() * progress.layers() >= 3 * progress.bytes()) {
                            System.out.println("midway");
                            System.out.flush();
                            try {
                                System.in.transferTo(OutputStream.nullOutputStream());
                            } catch (IOException e) {
                                throw new UncheckedIOException(e);
                            }
                        }
                    })).block(TIMEOUT);
            io.dispose();
        }
    }
}
