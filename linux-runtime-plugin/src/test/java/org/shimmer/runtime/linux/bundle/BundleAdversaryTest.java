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
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.testing.Latches;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;
import reactor.test.StepVerifier;

/**
 * Attacks on bundle deletion from the adversarial review of issue 9: layouts and machines the first tests did not
 * use. Each test names the defect it proves.
 */
class BundleAdversaryTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final byte[] SPEC = "{\"ociVersion\":\"1.0.2\"}".getBytes(UTF_8);

    @TempDir
    Path temp;

    private Path userDir;
    private Map<String, String> userBefore;
    private Scheduler io;

    @BeforeEach
    void setUp() throws IOException {
        userDir = TestTrees.userTree(temp.resolve("user"));
        userBefore = TestTrees.fingerprint(userDir);
        io = Schedulers.newBoundedElastic(4, 1000, "bundle-adversary-io");
    }

    @AfterEach
    void tearDown() throws IOException {
        try {
            TestTrees.assertNothingLeftUnder(temp, userDir, userBefore);
        } finally {
            io.dispose();
        }
    }

    /**
     * A namespace directory that is a symlink (an operator moved one namespace to another disk): create, load and
     * list follow it, so delete must too, or refuse before changing anything. It used to rename the bundle to its
     * hidden name and then fail opening the namespace directory with O_NOFOLLOW (ELOOP), on every later delete too.
     */
    @Test
    void aNamespaceDirectoryThatIsASymlinkDoesNotStrandTheBundle() throws Exception {
        Path stateRoot = Files.createDirectories(temp.resolve("state"));
        Path workRoot = Files.createDirectories(temp.resolve("work"));
        Path otherDisk = Files.createDirectories(temp.resolve("other-disk"));
        Files.createSymbolicLink(stateRoot.resolve("ns"), Files.createDirectories(otherDisk.resolve("state-ns")));
        Files.createSymbolicLink(workRoot.resolve("ns"), Files.createDirectories(otherDisk.resolve("work-ns")));
        BundleStore store = new BundleStore(new RuntimeConfig(stateRoot, workRoot), io, ShimFactory.NONE);
        Bundle bundle = store.create("ns", "c1", SPEC).block(TIMEOUT);
        Files.writeString(bundle.rootfs().resolve("file"), "ours");
        StepVerifier.create(store.list("ns")).expectNext(bundle).verifyComplete();

        store.delete("ns", "c1").onErrorResume(e -> Mono.empty()).block(TIMEOUT);

        // Either deleted, or refused with the bundle still where create put it; never hidden and kept.
        List<String> left = names(otherDisk.resolve("state-ns"));
        assertThat(left.isEmpty() || left.equals(List.of("c1")))
                .as("the namespace directory after delete is empty or holds c1 as it was: " + left).isTrue();
        StepVerifier.create(store.delete("ns", "c1")).verifyComplete();
        assertThat(names(otherDisk.resolve("state-ns"))).isEmpty();
        assertThat(names(otherDisk.resolve("work-ns"))).isEmpty();
    }

    /**
     * A host run without a UTF-8 locale (a systemd service without LANG reads file names as ASCII) on a machine
     * with any mount point whose name is not ASCII, e.g. a USB disk at {@code /media/user/Clé}: every bundle
     * delete used to fail with the JDK's unchecked {@code InvalidPathException} from parsing mountinfo, not a
     * typed error, and no bundle could ever be deleted. Run in a child JVM with {@code LANG=C}.
     */
    @Test
    void aNonAsciiMountPointElsewhereDoesNotBreakDeleteUnderAnAsciiLocale() throws Exception {
        Path elsewhere = Files.createDirectories(temp.resolve("Clé"));
        Path output = temp.resolve("child.out");
        BundleStore store = new BundleStore(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), io,
                ShimFactory.NONE);
        Bundle inUse = store.create("ns", "c2", SPEC).block(TIMEOUT);
        Path mountedInside = Files.createDirectories(inUse.rootfs().resolve("données"));
        try {
            TestTrees.tmpfs(elsewhere, "size=64k");
            TestTrees.bind(userDir, mountedInside, false);
            Path java = Path.of(System.getProperty("java.home"), "bin", "java");
            ProcessBuilder child = new ProcessBuilder(java.toString(), "--enable-native-access=ALL-UNNAMED",
                    "-cp", System.getProperty("java.class.path"), AsciiLocaleHost.class.getName(),
                    temp.resolve("state").toString(), temp.resolve("work").toString())
                    .redirectErrorStream(true)
                    .redirectOutput(output.toFile());
            child.environment().put("LANG", "C");
            child.environment().put("LC_ALL", "C");
            Process process = child.start();
            assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("child JVM ended").isTrue();

            assertThat(Files.readString(output)).as("the child's report").contains("file names: ANSI_X3.4-1968")
                    .contains("delete c1: done")
                    .contains("delete c2: refused, is in use: " + temp.toRealPath().resolve("state/ns/c2/rootfs/"));
            assertThat(process.exitValue()).isZero();
            assertThat(names(temp.resolve("state/ns"))).containsExactly("c2");
        } finally {
            TestTrees.unmountAllUnder(temp);
        }
        StepVerifier.create(inUse.delete()).verifyComplete();
        assertThat(names(temp.resolve("state/ns"))).isEmpty();
    }

    /**
     * The child JVM of the test above: creates and deletes bundle c1, then tries to delete c2, which has a mount
     * with a non-ASCII name under its rootfs, and says how each delete ended.
     */
    static final class AsciiLocaleHost {
        public static void main(String[] args) {
            System.out.println("file names: " + System.getProperty("sun.jnu.encoding"));
            Scheduler io = Schedulers.newBoundedElastic(2, 100, "child-io");
            BundleStore store = new BundleStore(new RuntimeConfig(Path.of(args[0]), Path.of(args[1])), io,
                    ShimFactory.NONE);
            try {
                store.create("ns", "c1", SPEC).block(TIMEOUT);
                store.delete("ns", "c1").block(TIMEOUT);
                System.out.println("delete c1: done");
            } catch (RuntimeException e) {
                System.out.println("delete c1: failed with " + e);
            }
            try {
                store.delete("ns", "c2").block(TIMEOUT);
                System.out.println("delete c2: done");
            } catch (FailedPreconditionException e) {
                String message = e.getMessage();
                System.out.println("delete c2: refused, " + message.substring(message.indexOf("is in use")));
            } catch (RuntimeException e) {
                System.out.println("delete c2: failed with " + e);
            } finally {
                io.dispose();
            }
        }
    }

    /**
     * A create cancelled before it returned (a CLI's Ctrl-C, a caller's timeout) must not leave a complete bundle
     * nobody was given: the next create of the id then failed with {@code AlreadyExistsException}. Cancelled here
     * after each step on disk, the last one included, before the bundle reached the caller.
     */
    @ParameterizedTest
    @EnumSource(BundleStore.CreateStep.class)
    void aCreateCancelledBeforeItReturnedLeavesNoBundle(BundleStore.CreateStep cancelledAt) throws Exception {
        Scheduler single = Schedulers.newSingle("bundle-adversary-create");
        CountDownLatch reached = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        BundleStore.CreateObserver holdAtTheEnd = (step, path) -> {
            if (step == cancelledAt) {
                reached.countDown();
                Latches.awaitUninterruptibly(release);
            }
        };
        RuntimeConfig config = new RuntimeConfig(temp.resolve("state"), temp.resolve("work"));
        BundleStore store = new BundleStore(config, single, ShimFactory.NONE, holdAtTheEnd);
        try {
            Disposable create = store.create("ns", "c1", SPEC).subscribe(bundle -> {}, error -> {});
            assertThat(reached.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
            create.dispose();
            release.countDown();
            // The store's only thread runs this after the cancelled create has finished.
            Mono.fromRunnable(() -> {}).subscribeOn(single).block(TIMEOUT);

            assertThat(names(temp.resolve("state/ns"))).as("bundles after a cancelled create").isEmpty();
            assertThat(names(temp.resolve("work/ns"))).as("work dirs after a cancelled create").isEmpty();
        } finally {
            single.dispose();
        }
        BundleStore plain = new BundleStore(config, io, ShimFactory.NONE);
        StepVerifier.create(plain.create("ns", "c1", SPEC)).expectNextCount(1).verifyComplete();
        StepVerifier.create(plain.delete("ns", "c1")).verifyComplete();
    }

    /**
     * A bundle directory renamed away and swapped for a link to a user's directory while a create works in it: the
     * create went on by path, made {@code rootfs} in the user's directory and replaced the user's
     * {@code config.json} with the spec, and returned a bundle. It now fails, naming the bundle directory, with
     * nothing of the user's changed, the directory it made (moved away) emptied again and the link left alone.
     */
    @ParameterizedTest
    @EnumSource(value = BundleStore.CreateStep.class, names = {"BUNDLE_DIR", "WORK_DIR", "ROOTFS_DIR"})
    void aBundleDirectorySwappedForALinkMidCreateChangesNothingOfTheUsers(BundleStore.CreateStep swappedAt)
            throws Exception {
        Files.writeString(userDir.resolve("config.json"), "the user's own");
        userBefore = TestTrees.fingerprint(userDir);
        Path movedAway = temp.resolve("moved-away");
        Path bundleDir = temp.resolve("state/ns/c1");
        BundleStore.CreateObserver swap = (step, path) -> {
            if (step == swappedAt) {
                Files.move(bundleDir, movedAway);
                Files.createSymbolicLink(bundleDir, userDir);
            }
        };
        RuntimeConfig config = new RuntimeConfig(temp.resolve("state"), temp.resolve("work"));
        BundleStore store = new BundleStore(config, io, ShimFactory.NONE, swap);

        StepVerifier.create(store.create("ns", "c1", SPEC))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining("failed to create bundle ns/c1: " + bundleDir
                                + " was removed or replaced"))
                .verify(TIMEOUT);

        assertThat(names(movedAway)).as("what the create made in its directory").isEmpty();
        assertThat(names(temp.resolve("work/ns"))).as("work directories").isEmpty();
        assertThat(Files.readSymbolicLink(bundleDir)).as("the link, not the create's").isEqualTo(userDir);
        Files.delete(bundleDir);
        Files.delete(movedAway);
        BundleStore plain = new BundleStore(config, io, ShimFactory.NONE);
        StepVerifier.create(plain.create("ns", "c1", SPEC)).expectNextCount(1).verifyComplete();
        StepVerifier.create(plain.delete("ns", "c1")).verifyComplete();
    }

    /**
     * Roots nested the plausible way ({@code stateRoot=/var/lib/shimmer}, {@code workRoot=/var/lib/shimmer/work})
     * make namespace {@code work} of the state root the work root itself: deleting the never-created bundle
     * {@code work/ns} renamed and removed the work directories of every container of namespace {@code ns}.
     */
    @Test
    void aWorkRootInsideTheStateRootIsNotABundleToDelete() throws Exception {
        Path stateRoot = temp.resolve("state");
        RuntimeConfig config = new RuntimeConfig(stateRoot, stateRoot.resolve("work"));
        BundleStore store = new BundleStore(config, io, ShimFactory.NONE);
        Bundle running = store.create("ns", "c1", SPEC).block(TIMEOUT);
        Files.writeString(running.workDir().resolve("shim.json"), "{\"address\":\"unix:///run/x\"}");

        refusesNamespaceWork(store, running);
        StepVerifier.create(running.delete()).verifyComplete();
    }

    /**
     * With the work root at {@code <stateRoot>/work}, bundle work/ns would be the work directory of namespace ns:
     * its delete and the create of work/ns2 are refused, and {@code running}'s record stays.
     */
    private static void refusesNamespaceWork(BundleStore store, Bundle running) {
        StepVerifier.create(store.delete("work", "ns"))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining("bundle work/ns cannot exist"))
                .verify(TIMEOUT);
        StepVerifier.create(store.create("work", "ns2", SPEC))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining("bundle work/ns2 cannot exist"))
                .verify(TIMEOUT);
        assertThat(running.workDir().resolve("shim.json")).as("another container's record").exists();
    }

    /**
     * The same nesting reached through a link ({@code workRoot} a link to {@code <stateRoot>/work}, or the state
     * root a link into the work root): the check compared the paths as given, so deleting the never-created bundle
     * {@code work/ns} again renamed and removed the work directories of every container of namespace {@code ns}.
     */
    @Test
    void rootsNestedThroughALinkAreRefusedAsWhenNestedByPath() throws Exception {
        Path stateRoot = Files.createDirectories(temp.resolve("state"));
        Path workRoot = Files.createSymbolicLink(temp.resolve("work-link"),
                Files.createDirectories(stateRoot.resolve("work")));
        BundleStore store = new BundleStore(new RuntimeConfig(stateRoot, workRoot), io, ShimFactory.NONE);
        Bundle running = store.create("ns", "c1", SPEC).block(TIMEOUT);
        Files.writeString(running.workDir().resolve("shim.json"), "{\"address\":\"unix:///run/x\"}");

        refusesNamespaceWork(store, running);
        assertThat(names(stateRoot.resolve("work"))).as("namespace work directories")
                .containsExactlyInAnyOrder("ns", WorkRootClaim.FILE);

        // The other way round: the state root a link into the work root.
        Path otherWork = Files.createDirectories(temp.resolve("other-work"));
        Path linkedState = Files.createSymbolicLink(temp.resolve("state-link"),
                Files.createDirectories(otherWork.resolve("ns3")));
        BundleStore reversed = new BundleStore(new RuntimeConfig(linkedState, otherWork), io, ShimFactory.NONE);
        StepVerifier.create(reversed.create("ns3", "c2", SPEC))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining("bundle ns3/c2 cannot exist"))
                .verify(TIMEOUT);

        StepVerifier.create(running.delete()).verifyComplete();
        assertThat(names(stateRoot.resolve("ns"))).isEmpty();
    }

    /**
     * Two state roots given one work root (a state root changed and the work root left at its default): a work
     * directory is found by namespace and id alone, so the second root's delete of a bundle it never had removed
     * the first root's work directory with its records. The work root serves the state root that first used it;
     * another is refused, naming both, before it makes or removes anything.
     */
    @Test
    void aWorkRootIsRefusedToASecondStateRootBeforeAnythingOfTheFirstIsTouched() throws Exception {
        Path workRoot = temp.resolve("work");
        BundleStore first = new BundleStore(new RuntimeConfig(temp.resolve("state-a"), workRoot), io,
                ShimFactory.NONE);
        BundleStore second = new BundleStore(new RuntimeConfig(temp.resolve("state-b"), workRoot), io,
                ShimFactory.NONE);
        Bundle running = first.create("ns", "c1", SPEC).block(TIMEOUT);
        Files.writeString(running.workDir().resolve("launch.json"), "{}");

        for (var call : List.of(second.delete("ns", "c1"), second.create("ns", "c2", SPEC).then())) {
            StepVerifier.create(call)
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                            .hasMessageContaining("work root " + workRoot + " serves state root "
                                    + temp.resolve("state-a") + " (recorded in " + workRoot.resolve(WorkRootClaim.FILE)
                                    + "), not " + temp.resolve("state-b")))
                    .verify(TIMEOUT);
        }

        assertThat(running.workDir().resolve("launch.json")).as("the first root's record").exists();
        assertThat(names(workRoot.resolve("ns"))).as("work directories").containsExactly("c1");
        assertThat(temp.resolve("state-b").resolve("ns").resolve("c2")).doesNotExist();
        StepVerifier.create(running.delete()).verifyComplete();
        assertThat(names(workRoot.resolve("ns"))).isEmpty();
    }

    /** Two deletes of one id racing through a large tree both succeed and leave nothing, not even leftovers. */
    @Test
    void twoDeletesRacingThroughOneTreeBothSucceed() throws Exception {
        BundleStore store = new BundleStore(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), io,
                ShimFactory.NONE);
        for (int round = 0; round < 5; round++) {
            Bundle bundle = store.create("ns", "c1", SPEC).block(TIMEOUT);
            for (int d = 0; d < 40; d++) {
                Path dir = Files.createDirectories(bundle.rootfs().resolve("d" + d + "/e/f"));
                for (int f = 0; f < 25; f++) {
                    Files.writeString(dir.resolve("f" + f), "x");
                }
            }
            StepVerifier.create(Mono.when(store.delete("ns", "c1"), store.delete("ns", "c1"),
                            store.delete("ns", "c1")))
                    .verifyComplete();
            assertThat(names(temp.resolve("state/ns"))).isEmpty();
            assertThat(names(temp.resolve("work/ns"))).isEmpty();
        }
    }

    /**
     * Create and delete of one id racing, with and without a bundle and leftovers before: every outcome is a
     * typed error or success, and what is left is either no bundle or one whole bundle, never half of one and
     * never a leftover.
     */
    @Test
    void createAndDeleteOfOneIdRacingLeaveAWholeBundleOrNone() throws Exception {
        BundleStore store = new BundleStore(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), io,
                ShimFactory.NONE);
        for (int round = 0; round < 60; round++) {
            if (round % 3 == 1) {
                store.create("ns", "c1", SPEC).block(TIMEOUT);
            } else if (round % 3 == 2) {
                Files.createDirectories(temp.resolve("state/ns/.c1.deleting-" + UUID.randomUUID() + "/rootfs/a"));
            }
            List<Throwable> errors = new CopyOnWriteArrayList<>();
            Mono.when(
                            store.create("ns", "c1", SPEC).doOnError(errors::add).onErrorResume(e -> Mono.empty()),
                            store.delete("ns", "c1").doOnError(errors::add).onErrorResume(e -> Mono.empty()))
                    .block(TIMEOUT);

            assertThat(errors).allSatisfy(e -> assertThat(e).isInstanceOf(ShimmerException.class));
            List<String> bundles = names(temp.resolve("state/ns"));
            List<String> works = names(temp.resolve("work/ns"));
            assertThat(bundles).as("round " + round).isIn(List.of(), List.of("c1"));
            assertThat(works).as("round " + round).isEqualTo(bundles);
            if (!bundles.isEmpty()) {
                assertThat(names(temp.resolve("state/ns/c1"))).containsExactlyInAnyOrder("config.json", "rootfs");
            }
            store.delete("ns", "c1").block(TIMEOUT);
        }
    }

    /**
     * Mount points whose names mountinfo must escape (newline, tab, backslash followed by digits) are still seen
     * under the bundle and refused; a rootfs that is a symlink to the user's directory loses only the link.
     */
    @Test
    void escapedMountNamesAreRefusedAndASymlinkedRootfsLosesOnlyTheLink() throws Exception {
        BundleStore store = new BundleStore(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), io,
                ShimFactory.NONE);
        Bundle bundle = store.create("ns", "c1", SPEC).block(TIMEOUT);
        for (String name : List.of("new\nline", "tab\there", "back\\040slash")) {
            Path target = Files.createDirectories(bundle.rootfs().resolve(name));
            try {
                TestTrees.bind(userDir, target, false);
                StepVerifier.create(store.delete("ns", "c1"))
                        .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                                .hasMessageContaining("is in use: " + target))
                        .verify(TIMEOUT);
                assertThat(names(temp.resolve("state/ns"))).containsExactly("c1");
            } finally {
                TestTrees.unmountAllUnder(temp);
            }
        }
        Bundle other = store.create("ns", "c2", SPEC).block(TIMEOUT);
        Files.delete(other.rootfs());
        Files.createSymbolicLink(other.rootfs(), userDir);

        StepVerifier.create(store.delete("ns", "c2")).verifyComplete();
        StepVerifier.create(store.delete("ns", "c1")).verifyComplete();
        assertThat(names(temp.resolve("state/ns"))).isEmpty();
    }

    /**
     * A bundle directory that cannot be renamed (here its file system went read-only, as ext4 does on errors) must
     * leave the work directory alone: the bundle still exists and loads, and its work directory holds how to reach
     * its shim. The delete used to go on and remove the work directory anyway.
     */
    @Test
    void aBundleThatCannotBeRenamedKeepsItsWorkDirectory() throws Exception {
        Path stateRoot = Files.createDirectories(temp.resolve("state"));
        BundleStore store = new BundleStore(new RuntimeConfig(stateRoot, temp.resolve("work")), io,
                ShimFactory.NONE);
        try {
            TestTrees.tmpfs(stateRoot, "size=1m");
            Bundle bundle = store.create("ns", "c1", SPEC).block(TIMEOUT);
            Files.writeString(bundle.workDir().resolve("shim.json"), "{\"address\":\"unix:///run/x\"}");
            LinuxCalls.mount(null, stateRoot.toString(), null, LinuxCalls.MS_REMOUNT | LinuxCalls.MS_RDONLY, null);

            StepVerifier.create(store.delete("ns", "c1"))
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                            .hasMessageContaining("bundle directory " + bundle.path()))
                    .verify(TIMEOUT);

            StepVerifier.create(store.load("ns", "c1")).expectNext(bundle).verifyComplete();
            assertThat(bundle.workDir().resolve("shim.json")).as("the bundle's shim record").exists();
            LinuxCalls.mount(null, stateRoot.toString(), null, LinuxCalls.MS_REMOUNT, null);
            StepVerifier.create(store.delete("ns", "c1")).verifyComplete();
            assertThat(names(stateRoot.resolve("ns"))).isEmpty();
            assertThat(names(temp.resolve("work/ns"))).isEmpty();
        } finally {
            TestTrees.unmountAllUnder(temp);
        }
    }

    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
