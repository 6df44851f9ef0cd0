package org.shimmer.runtime.linux.bundle;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.shimmer.runtime.linux.testing.ErrorCodes.code;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.bundle.DirectoryTrees.WalkObserver;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.testing.LogCapture;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;
import reactor.test.StepVerifier;

/**
 * A bundle delete and the plugin stop: a rootfs a host filled with a tree of hundreds of thousands of files held
 * the stop for the io scheduler's 10 s timeout and then went on deleting past it, as no native call heeds the
 * interrupt. Once the runtime has been closing for {@link RuntimeResources#DELETE_GRACE} a delete stops between two
 * entries, the bundle hidden, and the next delete of the id or list of the namespace removes the rest.
 */
class BundleDeleteStopTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String PREFIX = "bundle-stop-test-";
    private static final byte[] SPEC = "{\"ociVersion\":\"1.0.2\"}".getBytes(UTF_8);
    private static final String NS = "ns";

    @TempDir
    Path temp;

    private RuntimeConfig config;
    private Path stateRoot;
    private Path workRoot;
    private Path userDir;
    private Map<String, String> userBefore;

    @BeforeEach
    void setUp() throws IOException {
        stateRoot = temp.resolve("state");
        workRoot = temp.resolve("work");
        config = new RuntimeConfig(stateRoot, workRoot);
        userDir = TestTrees.userTree(temp.resolve("user"));
        userBefore = TestTrees.fingerprint(userDir);
    }

    @AfterEach
    void tearDown() throws IOException {
        TestTrees.assertNothingLeftUnder(temp, userDir, userBefore);
    }

    @Test
    void aBundleBeingDeletedWhenTheRuntimeClosesIsLeftHiddenAndTheNextDeleteOfItsIdRemovesIt() throws Exception {
        Map<String, String> otherBefore = otherBundle();

        Throwable cut = deleteCutByTheStop(100);

        assertThat(cut).isInstanceOf(UnavailableException.class).has(code(ErrorCode.UNAVAILABLE))
                .hasMessageContaining("delete bundle ns/big: the runtime stopped")
                .hasMessageContaining("is removed by the next delete of ns/big or the next list of namespace ns");
        assertLeftHidden(otherBefore);
        try (RuntimeResources next = new RuntimeResources("bundle-next-test-")) {
            LinuxRuntime runtime = new LinuxRuntime(config, next);
            StepVerifier.create(runtime.load(NS, "big"))
                    .expectError(NotFoundException.class).verify(TIMEOUT);

            StepVerifier.create(runtime.delete(NS, "big")).verifyComplete();
        }

        assertThat(names(stateRoot.resolve(NS))).containsExactly("other");
        assertThat(names(workRoot.resolve(NS))).containsExactly("other");
        assertThat(TestTrees.fingerprint(stateRoot.resolve(NS).resolve("other"))).isEqualTo(otherBefore);
    }

    @Test
    void whatAStopLeftOfADeleteIsRemovedByTheNextListOfItsNamespace() throws Exception {
        Map<String, String> otherBefore = otherBundle();
        deleteCutByTheStop(5);
        assertLeftHidden(otherBefore);

        try (RuntimeResources next = new RuntimeResources("bundle-next-test-")) {
            StepVerifier.create(new LinuxRuntime(config, next).list(NS).map(Bundle::id))
                    .expectNext("other").verifyComplete();
        }

        assertThat(names(stateRoot.resolve(NS))).containsExactly("other");
        assertThat(names(workRoot.resolve(NS))).containsExactly("other");
        assertThat(TestTrees.fingerprint(stateRoot.resolve(NS).resolve("other"))).isEqualTo(otherBefore);
    }

    /**
     * The list's sweep takes each id's lock without waiting: a tree a delete of its id is removing now is that
     * delete's (two walks through one tree each found entries gone under them), and one holding a mount is left
     * for {@code forceDelete}, as the delete guard refuses it. Names that are not a delete's, and other namespaces,
     * are not touched.
     */
    @Test
    void aListLeavesTreesADeleteIsRemovingNowOrThatHoldAMountAndNamesThatAreNoDeletes() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicBoolean held = new AtomicBoolean();
        WalkObserver holdBusy = dir -> {
            if (dir.getFileName().toString().startsWith(".busy.deleting-") && held.compareAndSet(false, true)) {
                entered.countDown();
                awaitQuietly(release);
            }
        };
        Scheduler io = Schedulers.newBoundedElastic(4, 100, "bundle-sweep-test-io");
        try {
            BundleStore store = new BundleStore(config, io, ShimFactory.NONE, holdBusy, () -> false);
            store.create(NS, "keep", SPEC).block(TIMEOUT);
            Bundle busy = store.create(NS, "busy", SPEC).block(TIMEOUT);
            manyFiles(busy.rootfs(), 10, 10);
            CompletableFuture<Void> deleting = busy.delete().toFuture();
            assertThat(entered.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("the delete under way").isTrue();
            Path busyTree = single(stateRoot.resolve(NS), ".busy.deleting-");
            Map<String, String> busyBefore = TestTrees.fingerprint(busyTree);
            // A crash's leftovers of another id, on both sides: the list removes them.
            Path oldState = manyFiles(Files.createDirectories(hidden(stateRoot, NS, "old")), 3, 3);
            Path oldWork = manyFiles(Files.createDirectories(hidden(workRoot, NS, "old")), 3, 3);
            // Kept: a leftover holding a mount, a name no delete makes, another namespace's leftover.
            Path mountedTree = Files.createDirectories(hidden(stateRoot, NS, "mounted").resolve("rootfs"));
            TestTrees.tmpfs(mountedTree, "size=1m");
            Files.writeString(mountedTree.resolve("on-the-mount"), "kept");
            Path notADelete = Files.createDirectories(stateRoot.resolve(NS).resolve(".old.deleting-not-a-uuid"));
            Path otherNamespace = manyFiles(Files.createDirectories(hidden(stateRoot, "ns2", "old")), 2, 2);
            try {
                StepVerifier.create(store.list(NS).map(Bundle::id)).expectNext("keep").verifyComplete();

                assertThat(oldState).doesNotExist();
                assertThat(oldWork).doesNotExist();
                assertThat(TestTrees.fingerprint(busyTree)).as("the tree the delete removes").isEqualTo(busyBefore);
                assertThat(mountedTree.resolve("on-the-mount")).hasContent("kept");
                assertThat(notADelete).isDirectory();
                assertThat(TestTrees.fingerprint(otherNamespace)).hasSize(7);
            } finally {
                release.countDown();
                TestTrees.unmountAllUnder(temp);
            }
            assertThat(deleting).succeedsWithin(TIMEOUT);
            StepVerifier.create(store.list(NS).map(Bundle::id)).expectNext("keep").verifyComplete();
            assertThat(names(stateRoot.resolve(NS))).containsExactlyInAnyOrder("keep",
                    notADelete.getFileName().toString());
            assertThat(names(workRoot.resolve(NS))).containsExactly("keep");
            assertThat(TestTrees.fingerprint(otherNamespace)).hasSize(7);
        } finally {
            release.countDown();
            io.dispose();
        }
    }

    /**
     * A stop cut the delete of an id, and the host made and ran a new bundle of the id (its rootfs mounted): the
     * list's sweep refused the old id's leftovers as long as the new container ran, as it checked the mounts of the
     * live bundle too, which its walk never reaches; only a mount in a hidden tree keeps it.
     */
    @Test
    void aListRemovesWhatADeleteLeftOfAnIdWhoseNewBundleRunsWithItsRootfsMounted() throws Exception {
        Scheduler io = Schedulers.newBoundedElastic(2, 100, "bundle-sweep-test-io");
        try {
            BundleStore store = new BundleStore(config, io, ShimFactory.NONE, WalkObserver.NONE, () -> false);
            Path oldState = manyFiles(Files.createDirectories(hidden(stateRoot, NS, "web")), 3, 3);
            Path oldWork = manyFiles(Files.createDirectories(hidden(workRoot, NS, "web")), 3, 3);
            Bundle web = store.create(NS, "web", SPEC).block(TIMEOUT);
            TestTrees.bind(userDir, web.rootfs(), false);
            try {
                StepVerifier.create(store.list(NS).map(Bundle::id)).expectNext("web").verifyComplete();

                assertThat(oldState).as("the old bundle directory").doesNotExist();
                assertThat(oldWork).as("the old work directory").doesNotExist();
                assertThat(names(stateRoot.resolve(NS))).containsExactly("web");
                assertThat(names(workRoot.resolve(NS))).containsExactly("web");
            } finally {
                TestTrees.unmountAllUnder(temp);
            }
        } finally {
            io.dispose();
        }
    }

    /**
     * A list removed every leftover before it completed: one of 200,000 files made it (and so {@code shimmer ps})
     * take seconds, past a caller's timeout on a cold disk. Each list now removes a bounded share, the next goes on.
     */
    @Test
    void eachListRemovesABoundedShareOfWhatDeletesLeftAndTheNextListsGoOn() throws Exception {
        Scheduler io = Schedulers.newBoundedElastic(2, 100, "bundle-sweep-test-io");
        try {
            BundleStore store = new BundleStore(config, io, ShimFactory.NONE, WalkObserver.NONE, () -> false, 500);
            store.create(NS, "keep", SPEC).block(TIMEOUT);
            Path leftover = manyFiles(Files.createDirectories(hidden(stateRoot, NS, "old")), 20, 99);
            long before = entriesUnder(leftover);

            StepVerifier.create(store.list(NS).map(Bundle::id)).expectNext("keep").verifyComplete();

            long after = entriesUnder(leftover);
            assertThat(after).as("what one list left of %d entries", before).isPositive().isLessThan(before)
                    .isGreaterThanOrEqualTo(before - 500);
            int lists = 1;
            while (Files.exists(leftover)) {
                assertThat(lists++).as("lists needed").isLessThan(10);
                StepVerifier.create(store.list(NS).map(Bundle::id)).expectNext("keep").verifyComplete();
            }
            assertThat(lists).as("lists needed for %d entries, 500 each", before).isGreaterThanOrEqualTo(4);
            assertThat(names(stateRoot.resolve(NS))).containsExactly("keep");
        } finally {
            io.dispose();
        }
    }

    /**
     * A leftover deeper than a list's budget: each list spent its budget going down the tree, the descents counted
     * as entries, and removed nothing; the tree stayed, and the ids after it were never reached. A list's budget
     * now counts what it removes.
     */
    @Test
    void aLeftoverDeeperThanAListsBudgetIsRemovedByTheNextListsAndSoAreTheOthers() throws Exception {
        Scheduler io = Schedulers.newBoundedElastic(2, 100, "bundle-sweep-test-io");
        try {
            BundleStore store = new BundleStore(config, io, ShimFactory.NONE, WalkObserver.NONE, () -> false, 100);
            store.create(NS, "keep", SPEC).block(TIMEOUT);
            Path deep = Files.createDirectories(hidden(stateRoot, NS, "deep"));
            Path bottom = deep;
            for (int level = 0; level < 150; level++) {
                bottom = bottom.resolve("d");
            }
            Files.createDirectories(bottom);
            Path later = manyFiles(Files.createDirectories(hidden(stateRoot, NS, "later")), 2, 9);

            int lists = 0;
            while (Files.exists(deep) || Files.exists(later)) {
                assertThat(lists++).as("lists needed for 172 entries, 100 each").isLessThan(10);
                StepVerifier.create(store.list(NS).map(Bundle::id)).expectNext("keep").verifyComplete();
            }
            assertThat(names(stateRoot.resolve(NS))).containsExactly("keep");
        } finally {
            io.dispose();
        }
    }

    /**
     * A list cancelled while its sweep removed a leftover swept on to its budget: the cancel's interrupt reaches
     * no native call. The sweep now stops between two entries once its list is cancelled; the next list goes on.
     */
    @Test
    void aListCancelledWhileItSweepsStopsRemovingAndTheNextListRemovesTheRest() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger dirs = new AtomicInteger();
        WalkObserver holdOnce = dir -> {
            // The fifth directory of the leftover: held as a slow disk would, deaf to the interrupt.
            if (dir.toString().contains(".old.deleting-") && dirs.incrementAndGet() == 5) {
                entered.countDown();
                awaitUninterruptibly(release);
            }
        };
        // One thread: a task scheduled after the cancel runs once the sweep has returned.
        Scheduler io = Schedulers.newBoundedElastic(1, 100, "bundle-sweep-test-io");
        try {
            BundleStore store = new BundleStore(config, io, ShimFactory.NONE, holdOnce, () -> false);
            store.create(NS, "keep", SPEC).block(TIMEOUT);
            Path leftover = manyFiles(Files.createDirectories(hidden(stateRoot, NS, "old")), 50, 5);
            long before = entriesUnder(leftover);
            Disposable listing = store.list(NS).subscribe();
            assertThat(entered.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("the sweep under way").isTrue();

            listing.dispose();
            release.countDown();
            Mono.empty().subscribeOn(io).block(TIMEOUT);

            assertThat(leftover).as("the leftover, after the cancelled list").isDirectory();
            assertThat(entriesUnder(leftover)).as("what the cancelled list left of %d entries", before)
                    .isGreaterThan(before / 2);
            StepVerifier.create(store.list(NS).map(Bundle::id)).expectNext("keep").verifyComplete();
            assertThat(names(stateRoot.resolve(NS))).containsExactly("keep");
        } finally {
            release.countDown();
            io.dispose();
        }
    }

    /**
     * Two lists of one namespace at once: each takes an id's lock without waiting, so one skips the id the other
     * sweeps now and goes on with the rest; neither fails nor warns, and between them everything is removed.
     */
    @Test
    void twoListsAtOnceShareTheSweepAndNeitherFails() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicBoolean held = new AtomicBoolean();
        WalkObserver holdB = dir -> {
            if (dir.toString().contains(".b.deleting-") && held.compareAndSet(false, true)) {
                entered.countDown();
                awaitUninterruptibly(release);
            }
        };
        Scheduler io = Schedulers.newBoundedElastic(4, 100, "bundle-sweep-test-io");
        try (LogCapture log = LogCapture.start()) {
            BundleStore store = new BundleStore(config, io, ShimFactory.NONE, holdB, () -> false);
            store.create(NS, "keep", SPEC).block(TIMEOUT);
            Path a = manyFiles(Files.createDirectories(hidden(stateRoot, NS, "a")), 20, 5);
            Path b = manyFiles(Files.createDirectories(hidden(workRoot, NS, "b")), 20, 5);
            Path c = manyFiles(Files.createDirectories(hidden(stateRoot, NS, "c")), 20, 5);
            CompletableFuture<List<String>> first = store.list(NS).map(Bundle::id).collectList().toFuture();
            assertThat(entered.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("the first list at b").isTrue();

            StepVerifier.create(store.list(NS).map(Bundle::id)).expectNext("keep").verifyComplete();

            assertThat(a).doesNotExist();
            assertThat(c).as("swept by the second list, the first being at b").doesNotExist();
            assertThat(b).as("the first list's, now").isDirectory();
            release.countDown();
            assertThat(first).succeedsWithin(TIMEOUT).isEqualTo(List.of("keep"));
            assertThat(b).doesNotExist();
            assertThat(names(stateRoot.resolve(NS))).containsExactly("keep");
            assertThat(names(workRoot.resolve(NS))).containsExactly("keep");
            assertThat(log.text()).as("the log").doesNotContain("WARN").doesNotContain("could not");
        } finally {
            release.countDown();
            io.dispose();
        }
    }

    /**
     * A list's sweep held the id's lock until it had removed all its id's leftovers: a create of the id made
     * meanwhile (the host making again what a stop cut the delete of) waited for a tree of any size. The sweep now
     * lets a create or delete that awaits the lock go first, and leaves the rest for the next list or delete.
     */
    @Test
    void aCreateOfAnIdIsNotHeldUpByAListRemovingWhatADeleteOfItLeft() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        WalkObserver slow = dir -> {
            if (dir.toString().contains(".web.deleting-")) {
                entered.countDown();
                // A slow disk, 20 ms a directory: 4 s for the tree below.
                LockSupport.parkNanos(Duration.ofMillis(20).toNanos());
            }
        };
        Scheduler io = Schedulers.newBoundedElastic(4, 100, "bundle-sweep-test-io");
        try {
            BundleStore store = new BundleStore(config, io, ShimFactory.NONE, slow, () -> false);
            Path old = manyFiles(Files.createDirectories(hidden(stateRoot, NS, "web")), 200, 1);
            CompletableFuture<List<String>> listing = store.list(NS).map(Bundle::id).collectList().toFuture();
            assertThat(entered.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("the sweep under way").isTrue();

            Bundle web = store.create(NS, "web", SPEC).block(TIMEOUT);

            assertThat(old).as("the leftover, when the create ended").isDirectory();
            assertThat(listing).succeedsWithin(TIMEOUT).isEqualTo(List.of());
            StepVerifier.create(store.list(NS).map(Bundle::id)).expectNext("web").verifyComplete();
            assertThat(old).doesNotExist();
            assertThat(names(stateRoot.resolve(NS))).containsExactly("web");
            assertThat(web.configFile()).exists();
        } finally {
            io.dispose();
        }
    }

    /**
     * Creates ns/big, its rootfs filled with 300 directories of {@code files} files (30,000 for 100) and a link to
     * the user's directory, deletes it on a runtime's io scheduler, and closes the runtime once the delete is under
     * way. The walk is slowed to 40 ms a directory, as a slow disk does, by a wait that ignores interrupts, as a
     * native call does: the whole delete would take 12 s, longer than the stop waits. Returns what the delete
     * failed with, once the close returned with no thread of the runtime left and without waiting out its timeout.
     */
    private Throwable deleteCutByTheStop(int files) throws Exception {
        RuntimeResources resources = new RuntimeResources(PREFIX);
        CountDownLatch underWay = new CountDownLatch(10);
        WalkObserver slow = dir -> {
            underWay.countDown();
            long end = System.nanoTime() + Duration.ofMillis(40).toNanos();
            for (long now = System.nanoTime(); now < end; now = System.nanoTime()) {
                LockSupport.parkNanos(end - now);
            }
        };
        BundleStore store = new BundleStore(config, resources.io(), ShimFactory.NONE, slow,
                () -> resources.closedFor(RuntimeResources.DELETE_GRACE));
        Bundle big = store.create(NS, "big", SPEC).block(TIMEOUT);
        manyFiles(big.rootfs(), 300, files);
        Files.createSymbolicLink(big.rootfs().resolve("user"), userDir);
        Files.writeString(big.workDir().resolve("shim.json"), "{}");
        CompletableFuture<Void> deleting = big.delete().toFuture();
        assertThat(underWay.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("the delete under way").isTrue();

        try (LogCapture log = LogCapture.start()) {
            resources.close();

            assertThat(Thread.getAllStackTraces().keySet()).as("threads of the stopped runtime")
                    .noneMatch(thread -> thread.getName().startsWith(PREFIX));
            assertThat(log.text()).as("the stop").doesNotContain("did not stop within");
        }
        assertThat(deleting).isCompletedExceptionally();
        try {
            deleting.get();
            throw new AssertionError("the delete succeeded");
        } catch (ExecutionException e) {
            return e.getCause();
        }
    }

    /** The bundle ns/big is out of sight, hidden on both sides, and nothing else changed. */
    private void assertLeftHidden(Map<String, String> otherBefore) throws Exception {
        Path bundleLeft = single(stateRoot.resolve(NS), ".big.deleting-");
        Path workLeft = single(workRoot.resolve(NS), ".big.deleting-");
        assertThat(names(stateRoot.resolve(NS))).containsExactlyInAnyOrder("other",
                bundleLeft.getFileName().toString());
        assertThat(names(workRoot.resolve(NS))).containsExactlyInAnyOrder("other",
                workLeft.getFileName().toString());
        assertThat(workLeft.resolve("shim.json")).as("the work side, not begun").hasContent("{}");
        assertThat(bundleLeft.resolve("rootfs")).as("the rootfs, cut short: removed last").isDirectory();
        assertThat(TestTrees.fingerprint(stateRoot.resolve(NS).resolve("other"))).isEqualTo(otherBefore);
        try (RuntimeResources next = new RuntimeResources("bundle-next-test-")) {
            StepVerifier.create(new LinuxRuntime(config, next).load(NS, "big"))
                    .expectError(NotFoundException.class).verify(TIMEOUT);
        }
    }

    /** Makes the bundle ns/other, with a file in its rootfs; returns its fingerprint. */
    private Map<String, String> otherBundle() throws Exception {
        Scheduler io = Schedulers.newBoundedElastic(2, 100, "bundle-other-io");
        try {
            Bundle other = new BundleStore(config, io, ShimFactory.NONE).create(NS, "other", SPEC).block(TIMEOUT);
            Files.writeString(other.rootfs().resolve("data"), "theirs");
            return TestTrees.fingerprint(other.path());
        } finally {
            io.dispose();
        }
    }

    private static Path hidden(Path root, String namespace, String id) {
        return root.resolve(namespace).resolve("." + id + ".deleting-" + UUID.randomUUID());
    }

    /** Fills {@code dir} with {@code dirs} directories of {@code files} empty files each; returns it. */
    private static Path manyFiles(Path dir, int dirs, int files) throws IOException {
        for (int i = 0; i < dirs; i++) {
            Path sub = Files.createDirectory(dir.resolve("d" + i));
            for (int j = 0; j < files; j++) {
                Files.createFile(sub.resolve("f" + j));
            }
        }
        return dir;
    }

    /** Every entry at or under {@code dir}, {@code dir} itself included. */
    private static long entriesUnder(Path dir) throws IOException {
        try (Stream<Path> entries = Files.walk(dir)) {
            return entries.count();
        }
    }

    private static Path single(Path dir, String prefix) throws IOException {
        List<String> matching = names(dir).stream().filter(name -> name.startsWith(prefix)).toList();
        assertThat(matching).as(prefix + "* in " + dir).hasSize(1);
        return dir.resolve(matching.getFirst());
    }

    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.map(path -> path.getFileName().toString()).sorted().toList();
        }
    }

    /** Waits for {@code latch} as a native call does: an interrupt meanwhile is kept, not heeded. */
    private static void awaitUninterruptibly(CountDownLatch latch) {
        boolean interrupted = false;
        long end = System.nanoTime() + TIMEOUT.toNanos();
        while (latch.getCount() > 0 && System.nanoTime() < end) {
            try {
                latch.await(end - System.nanoTime(), TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            if (!latch.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
                throw new IllegalStateException("never released");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
