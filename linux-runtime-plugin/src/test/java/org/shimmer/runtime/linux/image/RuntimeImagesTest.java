package org.shimmer.runtime.linux.image;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.image.ImportRequest;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.testing.OciLayouts;
import org.shimmer.runtime.linux.testing.OciLayouts.Compression;
import reactor.core.Disposable;
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

    @Test
    void aCollectedLayerBeingDeletedWhenTheRuntimeClosesIsLeftDeadForTheNextSweep() throws Exception {
        RuntimeResources closing = new RuntimeResources("images-close-delete-test-");
        Path root = temp.resolve("store");
        // No grace: the delete stops at the first entry after the close began, whatever the machine's speed.
        ImageStore store = new ImageStore(root, closing, Duration.ZERO);
        Path layout = OciLayouts.layout().tagged(OciLayouts.image().layer(OciLayouts.tar("x", "x")), "v1")
                .writeDirectory(temp.resolve("app"));
        store.importLayout(ImportRequest.of(layout)).block(TIMEOUT);
        // A layer no record names (a crash's leftover): the remove collects it with the image's own.
        manyFiles(Files.createDirectory(root.resolve("layers").resolve("ab".repeat(32))));
        CompletableFuture<Void> removed = store.remove("app:v1").toFuture();
        awaitDeleteUnderWay(root.resolve("tmp"));

        closing.close();

        // A delete still running at the close's 10 s timeout would be a thread left here.
        assertNoThreadLeft("images-close-delete-test-");
        assertThat(removed.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("the remove, its record gone").isNull();
        assertThat(names(root.resolve("layers"))).as("no layer named").isEmpty();
        assertThat(names(root.resolve("images"))).isEmpty();
        // The layer cut short and, when the directory listed it after that one, the image's own layer not begun:
        // which comes first is the file system's (ext4 lists a directory in the order of its names' hashes, seeded
        // per file system), so the test passed or failed by the machine and the orphan's name.
        assertThat(names(root.resolve("tmp"))).as("the layers cut short or not begun, dead by their names")
                .isNotEmpty().allSatisfy(name -> assertThat(name).startsWith("removed-"));
        assertTheNextSweepDeletesEverything(root);
    }

    @Test
    void aDeadImportsScratchBeingSweptWhenTheRuntimeClosesIsLeftForTheNextSweep() throws Exception {
        RuntimeResources closing = new RuntimeResources("images-close-sweep-test-");
        Path root = temp.resolve("store");
        ImageStore store = new ImageStore(root, closing, Duration.ZERO);
        store.prepare();
        // The scratch of an import killed before it locked its owner file: dead, and deleted by any sweep.
        Path dead = manyFiles(Files.createDirectory(root.resolve("tmp").resolve("dead-import")));
        CompletableFuture<Void> removed = store.remove("absent:v1").toFuture();
        awaitDeleteUnderWay(root.resolve("tmp"));

        closing.close();

        // A delete still running at the close's 10 s timeout would be a thread left here.
        assertNoThreadLeft("images-close-sweep-test-");
        assertThat(removed).failsWithin(TIMEOUT).withThrowableOfType(ExecutionException.class)
                .withCauseInstanceOf(NotFoundException.class);
        assertThat(names(root.resolve("tmp"))).as("the sweep cut short").containsExactly("dead-import");
        assertThat(names(dead)).isNotEmpty();
        assertTheNextSweepDeletesEverything(root);
    }

    @Test
    void aDeleteBegunLongerThanTheGraceAfterTheRuntimeBeganToCloseDeletesNothing() throws Exception {
        RuntimeResources closing = new RuntimeResources("images-close-late-test-");
        Path root = temp.resolve("store");
        Duration grace = Duration.ofMillis(200);
        ImageStore store = new ImageStore(root, closing, grace);
        store.prepare();
        Path dead = manyFiles(Files.createDirectory(root.resolve("tmp").resolve("dead-import")));
        CompletableFuture<Void> removed;
        CompletableFuture<Void> stopped;
        // The store's lock, held as another runtime or process holds it: the remove, on an io thread before the
        // close, waits for it, and its sweep's deletes begin only once the close began more than the grace ago.
        try (FileLock _ = store.lock()) {
            removed = store.remove("absent:v1").toFuture();
            stopped = CompletableFuture.runAsync(closing::close);
            while (!closing.isClosed()) {
                Thread.onSpinWait();
            }
            Thread.sleep(grace.multipliedBy(2));
        }

        stopped.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        assertNoThreadLeft("images-close-late-test-");
        assertThat(removed).failsWithin(TIMEOUT).withThrowableOfType(ExecutionException.class)
                .withCauseInstanceOf(NotFoundException.class);
        try (Stream<Path> entries = Files.walk(dead)) {
            assertThat(entries.count()).as("the dead import's files, past the grace: none deleted")
                    .isEqualTo(1 + 100 + 100 * 300);
        }
        assertTheNextSweepDeletesEverything(root);
    }

    @Test
    void anImportsScratchBeingDeletedWhenTheRuntimeClosesIsLeftDeadForTheNextSweep() throws Exception {
        RuntimeResources closing = new RuntimeResources("images-close-scratch-test-");
        Path root = temp.resolve("store");
        ImageStore store = new ImageStore(root, closing, Duration.ZERO);
        Map<String, byte[]> files = new LinkedHashMap<>();
        for (int dir = 0; dir < 100; dir++) {
            for (int file = 0; file < 400; file++) {
                files.put("d" + dir + "/f" + file, new byte[0]);
            }
        }
        Path layout = OciLayouts.layout().tagged(OciLayouts.image().layer(OciLayouts.tar(files),
                Compression.NONE), "v1").writeDirectory(temp.resolve("many"));
        AtomicReference<Disposable> subscription = new AtomicReference<>();
        CountDownLatch cancelled = new CountDownLatch(1);
        // Cancelled by its subscriber some 25,000 files into its layer: the import then deletes its scratch.
        ImportRequest request = ImportRequest.of(layout).withProgress(progress -> {
            if (progress.bytesDone() >= 12 << 20 && cancelled.getCount() > 0) {
                while (subscription.get() == null) {
                    Thread.onSpinWait();
                }
                subscription.get().dispose();
                cancelled.countDown();
            }
        });
        subscription.set(store.importLayout(request).subscribe(image -> {}, error -> {}));
        assertThat(cancelled.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        Path scratch;
        try (Stream<Path> entries = Files.list(root.resolve("tmp"))) {
            scratch = entries.findFirst().orElseThrow();
        }
        awaitDeleteUnderWay(scratch);

        closing.close();

        // A delete still running at the close's 10 s timeout would be a thread left here.
        assertNoThreadLeft("images-close-scratch-test-");
        assertThat(names(root.resolve("tmp"))).as("the scratch cut short").containsExactly(
                scratch.getFileName().toString());
        try (FileLock free = FileLock.tryAcquire(scratch.resolve("owner"))) {
            assertThat(free).as("its owner lock, let go: the scratch is dead").isNotNull();
        }
        assertThat(names(root.resolve("layers"))).isEmpty();
        assertTheNextSweepDeletesEverything(root);
    }

    /** Fills {@code dir} with 100 directories of 300 empty files each; returns it. */
    private static Path manyFiles(Path dir) throws IOException {
        for (int i = 0; i < 100; i++) {
            Path sub = Files.createDirectory(dir.resolve("d" + i));
            for (int j = 0; j < 300; j++) {
                Files.createFile(sub.resolve("f" + j));
            }
        }
        return dir;
    }

    /**
     * Waits until a delete is under way below {@code under}: a directory there that holds directories has fewer
     * than the most it was seen with.
     */
    private static void awaitDeleteUnderWay(Path under) throws Exception {
        Map<Path, Integer> most = new LinkedHashMap<>();
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            List<Path> dirs = new ArrayList<>();
            try (Stream<Path> entries = Files.list(under)) {
                entries.filter(Files::isDirectory).forEach(dirs::add);
            } catch (IOException vanished) {
                // Listed as it went: looked at again.
            }
            for (Path dir : dirs) {
                int count;
                try (Stream<Path> entries = Files.list(dir)) {
                    count = (int) entries.filter(Files::isDirectory).count();
                } catch (IOException vanished) {
                    continue;
                }
                if (count > 0 && count < most.merge(dir, count, Math::max)) {
                    return;
                }
            }
            Thread.sleep(1);
        }
        throw new AssertionError("no delete got under way below " + under);
    }

    private static void assertNoThreadLeft(String prefix) {
        assertThat(Thread.getAllStackTraces().keySet()).as("threads of the stopped runtime")
                .noneMatch(thread -> thread.getName().startsWith(prefix));
    }

    /** A store of a new runtime on {@code root} sweeps at its first remove: nothing is left in it. */
    private static void assertTheNextSweepDeletesEverything(Path root) throws Exception {
        RuntimeResources next = new RuntimeResources("images-next-test-");
        try {
            CompletableFuture<Void> remove = new ImageStore(root, next).remove("absent:v1").toFuture();
            assertThat(remove).failsWithin(TIMEOUT).withThrowableOfType(ExecutionException.class)
                    .withCauseInstanceOf(NotFoundException.class);
        } finally {
            next.close();
        }
        assertThat(names(root.resolve("tmp"))).as("what the stop left").isEmpty();
        assertThat(names(root.resolve("layers"))).isEmpty();
        assertThat(names(root.resolve("images"))).isEmpty();
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
