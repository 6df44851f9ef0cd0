package org.shimmer.runtime.linux.image;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.image.ImportRequest;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.testing.OciLayouts;
import org.shimmer.runtime.linux.testing.OciLayouts.Compression;
import reactor.core.publisher.Mono;

/** {@code LinuxRuntime.images()}: the store at the config's image root, shared by the views of that root. */
class RuntimeImagesTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    @TempDir
    Path temp;

    private RuntimeResources resources;

    @BeforeEach
    void start() {
        resources = new RuntimeResources("images-test-");
    }

    @AfterEach
    void stop() {
        resources.close();
    }

    @Test
    void viewsOfOneImageRootSeeOneStore() throws IOException {
        RuntimeConfig config = new RuntimeConfig(temp.resolve("state"), temp.resolve("work"));
        RuntimePlugin runtime = new LinuxRuntime(config, resources);
        Path layout = OciLayouts.layout().tagged(OciLayouts.image().layer(OciLayouts.tar("x", "x")), "v1")
                .writeDirectory(temp.resolve("app"));

        Image imported = runtime.images().importLayout(layout).block(TIMEOUT);

        assertThat(temp.resolve("work-images/images")).as("the default root, beside the work root").isDirectory();
        assertThat(runtime.withConfig(config.withStateRoot(temp.resolve("state2"))).images().list().collectList()
                .block(TIMEOUT)).containsExactly(imported);
        assertThat(runtime.withConfig(config.withImageRoot(temp.resolve("other"))).images().list().collectList()
                .block(TIMEOUT)).isEmpty();
    }

    @Test
    void anImportRunningWhenTheRuntimeClosesStopsAtOnceAndLeavesNothing() throws Exception {
        RuntimeResources closing = new RuntimeResources("images-close-test-");
        RuntimeConfig config = new RuntimeConfig(temp.resolve("state"), temp.resolve("work"));
        RuntimePlugin runtime = new LinuxRuntime(config, closing);
        byte[] big = new byte[160 << 20];
        new Random(11).nextBytes(big);
        Path layout = OciLayouts.layout().tagged(OciLayouts.image().layer(OciLayouts.tar(Map.of("big", big)),
                Compression.NONE), "v1").writeDirectory(temp.resolve("big"));
        CountDownLatch closeBegan = new CountDownLatch(1);
        closing.track(closeBegan::countDown);
        // The import waits in its first progress report until the runtime begins to close: it is then midway
        // through its only layer.
        ImportRequest request = ImportRequest.of(layout).withProgress(progress -> {
            try {
                closeBegan.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        CompletableFuture<Object> outcome = outcomeOf(runtime.images().importLayout(request));

        closing.close();

        assertStoppedByTheClose(outcome, layout);
        Path store = temp.resolve("work-images");
        assertThat(names(store.resolve("tmp"))).as("scratch").isEmpty();
        assertThat(names(store.resolve("layers"))).as("no layer written after the runtime closed").isEmpty();
        assertThat(names(store.resolve("images"))).isEmpty();
    }

    @Test
    void aLayerWaitingForTheStoreLockWhenTheRuntimeClosesIsNotRenamedIn() throws Exception {
        RuntimeResources closing = new RuntimeResources("images-close-rename-test-");
        RuntimeConfig config = new RuntimeConfig(temp.resolve("state"), temp.resolve("work"));
        RuntimePlugin runtime = new LinuxRuntime(config, closing);
        byte[] data = new byte[3 << 20];
        new Random(12).nextBytes(data);
        Path layout = OciLayouts.layout().tagged(OciLayouts.image().layer(OciLayouts.tar(Map.of("data", data)),
                Compression.NONE), "v1").writeDirectory(temp.resolve("data"));
        Path store = temp.resolve("work-images");
        CountDownLatch midLayer = new CountDownLatch(1);
        CountDownLatch lockHeld = new CountDownLatch(1);
        // At its first MiB the import waits until the store's lock is held here: it reads on, checks it was not
        // stopped, syncs, and then waits for the lock to rename its layer in (the unpack's last step).
        ImportRequest request = ImportRequest.of(layout).withProgress(progress -> {
            if (midLayer.getCount() > 0) {
                midLayer.countDown();
                try {
                    lockHeld.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        });
        CompletableFuture<Object> outcome = outcomeOf(runtime.images().importLayout(request));
        assertThat(midLayer.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        FileLock held = FileLock.acquire(store.resolve("lock"));
        try {
            lockHeld.countDown();
            awaitFlockWaiter(store.resolve("lock"));
            // Tracked after the import's own stop: the lock is let go once the import was told the runtime closes.
            closing.track(held::close);

            closing.close();
        } finally {
            held.close();
        }

        assertStoppedByTheClose(outcome, layout);
        assertThat(names(store.resolve("layers"))).as("no layer renamed in after the runtime closed").isEmpty();
        assertThat(names(store.resolve("images"))).isEmpty();
        assertThat(names(store.resolve("tmp"))).as("scratch").isEmpty();
    }

    /** Subscribes to {@code operation}; the future completes with what it ends with: its value or its error. */
    private static CompletableFuture<Object> outcomeOf(Mono<?> operation) {
        CompletableFuture<Object> outcome = new CompletableFuture<>();
        operation.subscribe(outcome::complete, outcome::complete);
        return outcome;
    }

    private static void assertStoppedByTheClose(CompletableFuture<Object> outcome, Path layout) throws Exception {
        assertThat(outcome.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isInstanceOfSatisfying(
                UnavailableException.class, e -> assertThat(e).hasMessageContaining(layout.toString())
                        .hasMessageContaining("the runtime closed"));
    }

    /** Waits until a thread of this process waits for the flock of {@code file} ({@code /proc/locks}' "->"). */
    private static void awaitFlockWaiter(Path file) throws Exception {
        String inode = ":" + Files.getAttribute(file, "unix:ino") + " ";
        String pid = " " + ProcessHandle.current().pid() + " ";
        for (int i = 0; i < 3000; i++) {
            for (String line : Files.readAllLines(Path.of("/proc/locks"))) {
                if (line.contains("-> FLOCK") && line.contains(inode) && line.contains(pid)) {
                    return;
                }
            }
            Thread.sleep(10);
        }
        throw new AssertionError("no thread waited for the lock " + file);
    }

    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.map(p -> p.getFileName().toString()).toList();
        }
    }
}
