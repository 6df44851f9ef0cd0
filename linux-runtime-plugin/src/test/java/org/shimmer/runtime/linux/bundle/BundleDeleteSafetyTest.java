package org.shimmer.runtime.linux.bundle;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.linux.bundle.DirectoryTrees.MountCrossingException;
import org.shimmer.runtime.linux.bundle.DirectoryTrees.WalkObserver;
import org.shimmer.runtime.linux.sys.MountTable;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;
import reactor.test.StepVerifier;

/**
 * Issue 9 finding 1 without a container: whatever is mounted at or under a bundle, or appears there while the
 * delete walks, or is reached through a symlink, is never entered; leftovers of an earlier delete are finished by
 * the next delete and ignored by create.
 */
class BundleDeleteSafetyTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final byte[] SPEC = "{\"ociVersion\":\"1.0.2\"}".getBytes(UTF_8);

    @TempDir
    Path temp;

    private Path stateRoot;
    private Path workRoot;
    private Path userDir;
    private Map<String, String> userBefore;
    private Scheduler io;
    private BundleStore store;

    @BeforeEach
    void setUp() throws IOException {
        stateRoot = temp.resolve("state");
        workRoot = temp.resolve("work");
        userDir = TestTrees.userTree(temp.resolve("user"));
        userBefore = TestTrees.fingerprint(userDir);
        io = Schedulers.newBoundedElastic(4, 1000, "bundle-safety-io");
        store = new BundleStore(new RuntimeConfig(stateRoot, workRoot), io, ShimFactory.NONE);
    }

    @AfterEach
    void tearDown() throws IOException {
        try {
            TestTrees.assertNothingLeftUnder(temp, userDir, userBefore);
        } finally {
            io.dispose();
        }
    }

    @ParameterizedTest(name = "{0} bind at {1} {2}")
    @CsvSource({
            "rw, bundle, rootfs",
            "ro, bundle, rootfs",
            "rw, bundle, rootfs/var/lib/deep data",
            "ro, bundle, rootfs/back\\slash",
            "rw, bundle, ''",
            "rw, work, io",
            "ro, work, a/b/c"})
    void aMountAtOrUnderABundleIsRefusedAndNothingChanges(String mode, String where, String relative)
            throws Exception {
        Bundle bundle = store.create("ns", "c1", SPEC).block(TIMEOUT);
        Files.writeString(bundle.workDir().resolve("shim.json"), "{}");
        Path base = where.equals("bundle") ? bundle.path() : bundle.workDir();
        Path target = Files.createDirectories(base.resolve(relative));
        Map<String, String> bundleBefore = TestTrees.fingerprint(bundle.path());
        Map<String, String> workBefore = TestTrees.fingerprint(bundle.workDir());
        try {
            TestTrees.bind(userDir, target, mode.equals("ro"));

            StepVerifier.create(bundle.delete())
                    .expectErrorSatisfies(e -> assertThat(e)
                            .isInstanceOf(FailedPreconditionException.class)
                            .hasMessageContaining("bundle ns/c1 is in use: " + target)
                            .hasMessageContaining(where.equals("bundle") ? "its bundle directory " + bundle.path()
                                    : "its work directory " + bundle.workDir())
                            .hasMessageEndingWith("nothing was deleted"))
                    .verify(TIMEOUT);

            assertThat(names(stateRoot.resolve("ns"))).containsExactly("c1");
            assertThat(names(workRoot.resolve("ns"))).containsExactly("c1");
            assertThat(TestTrees.fingerprint(userDir)).isEqualTo(userBefore);
        } finally {
            TestTrees.unmountAllUnder(temp);
        }
        assertThat(TestTrees.fingerprint(bundle.path())).isEqualTo(bundleBefore);
        assertThat(TestTrees.fingerprint(bundle.workDir())).isEqualTo(workBefore);
        StepVerifier.create(store.load("ns", "c1")).expectNext(bundle).verifyComplete();

        StepVerifier.create(bundle.delete()).verifyComplete();
        assertThat(names(stateRoot.resolve("ns"))).isEmpty();
        assertThat(names(workRoot.resolve("ns"))).isEmpty();
    }

    @Test
    void aMountUnderALeftoverOfTheIdIsRefusedToo() throws Exception {
        Bundle bundle = store.create("ns", "c1", SPEC).block(TIMEOUT);
        Path leftover = Files.createDirectories(stateRoot.resolve("ns/.c1.deleting-" + UUID.randomUUID()));
        Path target = Files.createDirectories(leftover.resolve("rootfs"));
        try {
            TestTrees.bind(userDir, target, false);

            StepVerifier.create(bundle.delete())
                    .expectErrorSatisfies(e -> assertThat(e)
                            .isInstanceOf(FailedPreconditionException.class)
                            .hasMessageContaining("is in use: " + target))
                    .verify(TIMEOUT);
            assertThat(names(stateRoot.resolve("ns"))).containsExactlyInAnyOrder("c1", leftover.getFileName().toString());
        } finally {
            TestTrees.unmountAllUnder(temp);
        }
        StepVerifier.create(bundle.delete()).verifyComplete();
        assertThat(names(stateRoot.resolve("ns"))).isEmpty();
    }

    @Test
    void symlinksInsideTheBundleAreRemovedNeverFollowed() throws Exception {
        Bundle bundle = store.create("ns", "c1", SPEC).block(TIMEOUT);
        Files.createSymbolicLink(bundle.rootfs().resolve("to-user-dir"), userDir);
        Files.createSymbolicLink(bundle.rootfs().resolve("to-user-file"), userDir.resolve("file-1.txt"));
        Files.createDirectories(bundle.rootfs().resolve("etc"));
        Files.createSymbolicLink(bundle.rootfs().resolve("etc/relative"), Path.of("../../../../../user/docs"));
        Files.createSymbolicLink(bundle.workDir().resolve("io"), userDir.resolve("docs"));
        Files.createSymbolicLink(bundle.workDir().resolve("dangling"), temp.resolve("nowhere"));

        StepVerifier.create(bundle.delete()).verifyComplete();

        assertThat(TestTrees.fingerprint(userDir)).isEqualTo(userBefore);
        assertThat(names(stateRoot.resolve("ns"))).isEmpty();
        assertThat(names(workRoot.resolve("ns"))).isEmpty();
    }

    @Test
    void namesThatAreNotValidTextAreRemovedToo() throws Exception {
        Bundle bundle = store.create("ns", "c1", SPEC).block(TIMEOUT);
        // What a container may write: bytes that are no UTF-8, as a directory with a file in it, and a file.
        Process process = new ProcessBuilder("sh", "-c",
                "d=\"$1/$(printf '\\377\\376')\"; mkdir \"$d\" && touch \"$d/$(printf '\\300x')\" \"$2/$(printf '\\351')\"",
                "sh", bundle.rootfs().toString(), bundle.workDir().toString())
                .redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), UTF_8);
        assertThat(process.waitFor()).as(output).isZero();
        assertThat(names(bundle.rootfs())).hasSize(1);
        assertThat(names(bundle.workDir())).hasSize(1);

        StepVerifier.create(bundle.delete()).verifyComplete();

        assertThat(names(stateRoot.resolve("ns"))).isEmpty();
        assertThat(names(workRoot.resolve("ns"))).isEmpty();
    }

    @Test
    void aTreeDeeperThanAPathCanNameIsRemoved() throws Exception {
        Bundle bundle = store.create("ns", "c1", SPEC).block(TIMEOUT);
        // 3000 levels of "d/" are 6000 characters, more than PATH_MAX: built 1000 levels at a time, each chain
        // moved into the deepest directory of the next.
        Path built = temp.resolve("chain");
        for (int round = 0; round < 3; round++) {
            Path next = temp.resolve("next");
            Path deepest = Files.createDirectories(next.resolve("d/".repeat(1000)));
            if (Files.exists(built)) {
                Files.move(built, deepest.resolve("d"));
            } else {
                Files.writeString(deepest.resolve("bottom"), "x");
            }
            Files.move(next, built);
        }
        Files.move(built, bundle.rootfs().resolve("deep"));

        StepVerifier.create(bundle.delete()).verifyComplete();

        assertThat(names(stateRoot.resolve("ns"))).isEmpty();
    }

    @Test
    void aBundleDirectoryReplacedByASymlinkLosesOnlyTheLink() throws Exception {
        Files.createDirectories(stateRoot.resolve("ns"));
        Files.createSymbolicLink(stateRoot.resolve("ns/c1"), userDir);
        Files.createDirectories(workRoot.resolve("ns"));
        Files.createSymbolicLink(workRoot.resolve("ns/c1"), userDir.resolve("docs"));

        StepVerifier.create(store.delete("ns", "c1")).verifyComplete();

        assertThat(names(stateRoot.resolve("ns"))).isEmpty();
        assertThat(names(workRoot.resolve("ns"))).isEmpty();
    }

    @Test
    void aMountThatAppearsMidWalkIsNotEnteredInEitherDirectory() throws Exception {
        Bundle bundle = store.create("ns", "c1", SPEC).block(TIMEOUT);
        Files.createDirectories(bundle.rootfs().resolve("a/x"));
        Files.createDirectories(bundle.rootfs().resolve("b/c"));
        Files.writeString(bundle.rootfs().resolve("b/c/placeholder"), "ours");
        Files.createDirectories(bundle.workDir().resolve("io/fifo-dir"));
        AtomicInteger mounted = new AtomicInteger();
        // Passes the up-front check, then mounts the user's directory on directories the walk has not reached.
        WalkObserver mountAhead = dir -> {
            if (dir.getFileName().toString().equals("rootfs")) {
                TestTrees.bind(userDir, dir.resolve("b/c"), false);
                mounted.incrementAndGet();
            } else if (dir.getParent().equals(workRoot.resolve("ns"))) {
                TestTrees.bind(userDir, dir.resolve("io/fifo-dir"), false);
                mounted.incrementAndGet();
            }
        };
        BundleStore racing = new BundleStore(store.config(), io, ShimFactory.NONE,
                BundleStore.CreateObserver.NONE, mountAhead);
        try {
            StepVerifier.create(racing.delete("ns", "c1"))
                    .expectErrorSatisfies(e -> assertThat(e)
                            .isInstanceOf(FailedPreconditionException.class)
                            .hasMessageContaining("failed to delete bundle ns/c1")
                            .hasMessageContaining("bundle directory " + bundle.path())
                            .hasMessageContaining("work directory " + bundle.workDir())
                            .hasMessageContaining("refusing to delete across a mount point")
                            .hasCauseInstanceOf(MountCrossingException.class)
                            .satisfies(error -> assertThat(error.getSuppressed()).hasSize(1)))
                    .verify(TIMEOUT);

            assertThat(mounted).hasValue(2);
            assertThat(TestTrees.fingerprint(userDir)).isEqualTo(userBefore);
            // The refused trees are hidden, so they look like no bundle.
            StepVerifier.create(store.list("ns")).verifyComplete();
        } finally {
            TestTrees.unmountAllUnder(temp);
        }

        StepVerifier.create(store.delete("ns", "c1")).verifyComplete();
        assertThat(names(stateRoot.resolve("ns"))).isEmpty();
        assertThat(names(workRoot.resolve("ns"))).isEmpty();
    }

    @Test
    void createIgnoresLeftoversAndTheNextDeleteFinishesThem() throws Exception {
        Bundle old = store.create("ns", "c1", SPEC).block(TIMEOUT);
        Files.writeString(old.rootfs().resolve("old-file"), "old");
        Files.writeString(old.workDir().resolve("shim.json"), "{\"old\":true}");
        // What a crashed delete leaves: both trees hidden, not yet removed.
        Path hiddenBundle = stateRoot.resolve("ns/.c1.deleting-" + UUID.randomUUID());
        Path hiddenWork = workRoot.resolve("ns/.c1.deleting-" + UUID.randomUUID());
        Files.move(old.path(), hiddenBundle);
        Files.move(old.workDir(), hiddenWork);
        // The hidden trees of another id, "c1.deleting-x", share the prefix and must be left alone.
        Path otherHidden = Files.createDirectories(stateRoot.resolve("ns/.c1.deleting-x.deleting-" + UUID.randomUUID()));

        Bundle fresh = store.create("ns", "c1", "{\"new\":true}".getBytes(UTF_8)).block(TIMEOUT);

        assertThat(names(fresh.rootfs())).isEmpty();
        assertThat(names(fresh.workDir())).isEmpty();
        assertThat(fresh.configFile()).hasContent("{\"new\":true}");
        assertThat(hiddenBundle.resolve("rootfs/old-file")).hasContent("old");
        assertThat(hiddenWork.resolve("shim.json")).hasContent("{\"old\":true}");
        // Loaded, not listed: a list would remove the leftovers itself (BundleDeleteStopTest).
        StepVerifier.create(store.load("ns", "c1")).expectNext(fresh).verifyComplete();

        StepVerifier.create(fresh.delete()).verifyComplete();

        assertThat(names(stateRoot.resolve("ns"))).containsExactly(otherHidden.getFileName().toString());
        assertThat(names(workRoot.resolve("ns"))).isEmpty();
        StepVerifier.create(store.delete("ns", "c1.deleting-x")).verifyComplete();
        assertThat(names(stateRoot.resolve("ns"))).isEmpty();
    }

    @Test
    void aDeleteThatFindsOnlyLeftoversSucceeds() throws Exception {
        Path hidden = Files.createDirectories(workRoot.resolve("ns/.c1.deleting-" + UUID.randomUUID() + "/io"));
        Files.writeString(hidden.resolve("stdout"), "x");

        StepVerifier.create(store.delete("ns", "c1")).verifyComplete();

        assertThat(names(workRoot.resolve("ns"))).isEmpty();
        assertThat(stateRoot).doesNotExist();
    }

    @Test
    void mountinfoEscapesAreDecoded() {
        byte[] mountinfo = ("""
                22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/root rw
                36 22 0:31 /user /tmp/my\\040dir/back\\134slash/tab\\011x rw - tmpfs tmpfs rw
                37 22 0:32 / /tmp/new\\012line rw - tmpfs tmpfs rw
                truncated
                """).getBytes(UTF_8);

        assertThat(MountTable.parse(mountinfo)).extracting(Object::toString).containsExactly(
                "/", "/tmp/my dir/back\\slash/tab\tx", "/tmp/new\nline");
        assertThat(MountTable.atOrUnder(MountTable.parse(mountinfo), Path.of("/tmp/my dir")))
                .extracting(Object::toString).containsExactly("/tmp/my dir/back\\slash/tab\tx");
        assertThat(MountTable.atOrUnder(MountTable.parse(mountinfo), Path.of("/tmp/my"))).isEmpty();
    }

    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
