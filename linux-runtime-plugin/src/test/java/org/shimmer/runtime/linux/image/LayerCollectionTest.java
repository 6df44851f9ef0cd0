package org.shimmer.runtime.linux.image;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.image.ImportRequest;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.OciLayouts;
import org.shimmer.runtime.linux.testing.TarLayers;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;
import reactor.test.StepVerifier;

/**
 * How a remove collects layers: by mark and sweep over {@code layers/}, keeping what records, running imports and
 * live leases (pending or with their bundle) use; and how what it collects leaves through {@code tmp/} without
 * the sweep ever opening a name a layer chose.
 */
class LayerCollectionTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    @TempDir
    Path temp;

    private Scheduler io;
    private ImageStore store;
    private Path root;
    private Map<Integer, String> fdsBefore;

    @BeforeEach
    void setUp() {
        fdsBefore = Leaks.openFds();
        io = Schedulers.newBoundedElastic(4, 1000, "collection-test-io");
        root = temp.resolve("images");
        store = new ImageStore(root, io);
    }

    @AfterEach
    void tearDown() throws Exception {
        io.dispose();
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5))).as("descriptors left open").isEmpty();
        if (Files.isDirectory(root.resolve("tmp"))) {
            assertThat(ImageStoreTest.names(root.resolve("tmp"))).as("left in tmp").isEmpty();
        }
    }

    @Test
    void aLeaseKeepsItsLayersAfterItsNameMovedToAnotherDigest() throws IOException {
        byte[] base = OciLayouts.tar("bin/sh", "shell");
        OciLayouts.Image v1 = OciLayouts.image().layer(base).layer(OciLayouts.tar("app", "v1"));
        OciLayouts.Image v2 = OciLayouts.image().layer(base).layer(OciLayouts.tar("app", "v2"));
        Image first = importAs(v1, "app:latest");
        Path bundle = bundleFrom(first.digest(), "web");
        store.lease(first, bundle).block(TIMEOUT).close();
        importAs(v2, "app:latest");

        StepVerifier.create(store.remove("app:latest")).verifyComplete();

        assertThat(ImageStoreTest.names(root.resolve("layers"))).as("the running container's lowers")
                .containsExactlyInAnyOrder(hex(v1.chainId(0)), hex(v1.chainId(1)));
        assertThat(Files.readString(layer(v1.chainId(1)).resolve("app"))).isEqualTo("v1");

        // Once the container is gone, the next remove collects what only it kept.
        delete(bundle);
        importAs(OciLayouts.image().layer(OciLayouts.tar("other", "o")), "other:1");
        StepVerifier.create(store.remove("other:1")).verifyComplete();
        assertThat(ImageStoreTest.names(root.resolve("layers"))).isEmpty();
        assertThat(ImageStoreTest.names(root.resolve("leases"))).isEmpty();
    }

    @Test
    void aRemoveCollectsTheOldDigestOfAMovedNameAndCrashLeftovers() throws IOException {
        importAs(OciLayouts.image().layer(OciLayouts.tar("app", "v1")), "app:latest");
        importAs(OciLayouts.image().layer(OciLayouts.tar("app", "v2")), "app:latest");
        // What a remove killed between the record's delete and the layers' move leaves: a layer no one names.
        Files.createDirectories(root.resolve("layers").resolve("c".repeat(64)).resolve("etc"));

        StepVerifier.create(store.remove("app:latest")).verifyComplete();

        assertThat(store.list().collectList().block(TIMEOUT)).isEmpty();
        assertThat(ImageStoreTest.names(root.resolve("layers"))).as("no image left, so no layer").isEmpty();
    }

    @Test
    void aPendingLeaseIsLiveUntilItsRunLetsGo() throws IOException {
        OciLayouts.Image built = OciLayouts.image().layer(OciLayouts.tar("x", "x"));
        Image image = importAs(built, "gap:1");
        Path bundle = temp.resolve("state/ns/not-yet");

        ImageLease lease = store.lease(image, bundle).block(TIMEOUT);
        try {
            StepVerifier.create(store.remove("gap:1"))
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                            .hasMessageContaining("image gap:1 is in use by container ns/not-yet"))
                    .verify(TIMEOUT);
            assertThat(lease.layers().getFirst()).isDirectory();
        } finally {
            lease.close();
        }

        // The holder let go and made no bundle (its run failed, or its process died): stale.
        StepVerifier.create(store.remove("gap:1")).verifyComplete();
        assertThat(ImageStoreTest.names(root.resolve("layers"))).isEmpty();
        assertThat(ImageStoreTest.names(root.resolve("leases"))).isEmpty();
    }

    /**
     * Two runs of one bundle from one image at once (two processes running the same id; only one makes the
     * bundle): the second lease replaced the first's file by a new one, leaving the first run's lock on an unlinked
     * file. Once the second let go (its run failed), a remove found the lease stale and took the layers from under
     * the first run, whose overlay then had no lower.
     */
    @Test
    void aSecondLeaseOfTheSameBundleLetGoLeavesTheFirstLive() throws IOException {
        Image image = importAs(OciLayouts.image().layer(OciLayouts.tar("x", "x")), "twice:1");
        Path bundle = temp.resolve("state/ns/same");

        try (ImageLease first = store.lease(image, bundle).block(TIMEOUT)) {
            store.lease(image, bundle).block(TIMEOUT).close();

            StepVerifier.create(store.remove("twice:1"))
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                            .hasMessageContaining("image twice:1 is in use by container ns/same"))
                    .verify(TIMEOUT);
            assertThat(first.layers().getFirst()).isDirectory();
        }

        StepVerifier.create(store.remove("twice:1")).verifyComplete();
        assertThat(ImageStoreTest.names(root.resolve("layers"))).isEmpty();
        assertThat(ImageStoreTest.names(root.resolve("leases"))).isEmpty();
    }

    /**
     * A lease is let go of by its holder alone ({@link ImageLease#close}): {@code ImageStore.unlease(digest, bundle)}
     * deleted the bundle's lease file whoever held it, so a second run's rollback took the lease of a first run of
     * the same bundle, and a remove then took the first run's layers. No run called it; it must not come back.
     */
    @Test
    void theStoreHasNoCallThatDeletesALeaseWhoeverHoldsIt() throws IOException {
        assertThat(Arrays.stream(ImageStore.class.getMethods()).map(Method::getName)).doesNotContain("unlease");
        Image image = importAs(OciLayouts.image().layer(OciLayouts.tar("x", "x")), "twice:1");
        Path bundle = temp.resolve("state/ns/same");
        ImageLease first = store.lease(image, bundle).block(TIMEOUT);
        try (ImageLease second = store.lease(image, bundle).block(TIMEOUT)) {
            // The first run fails and rolls back: closing its lease is all it does.
            first.close();

            StepVerifier.create(store.remove("twice:1"))
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                            .hasMessageContaining("image twice:1 is in use by container ns/same"))
                    .verify(TIMEOUT);
            assertThat(second.layers().getFirst()).isDirectory();
        } finally {
            first.close();
        }
        StepVerifier.create(store.remove("twice:1")).verifyComplete();
        assertThat(ImageStoreTest.names(root.resolve("leases"))).isEmpty();
    }

    @Test
    void aRemovedLayerWithOwnerEntriesLeavesThroughTmpUnopened() throws Exception {
        // A layer whose top has "owner" as a terminal, and one with "owner" as a symlink: once moved into tmp/
        // as they were, the sweep opened them (a tty, ELOOP on every import and remove).
        List<OciLayouts.Image> hostile = List.of(
                OciLayouts.image().layer(TarLayers.layer().charDevice("owner", 5, 0, 0666).file("x", "x", 0644)
                        .bytes()),
                OciLayouts.image().layer(TarLayers.layer().symlink("owner", "x").file("x", "x", 0644).bytes()));
        for (int i = 0; i < hostile.size(); i++) {
            importAs(hostile.get(i), "hostile:" + i);
        }
        StepVerifier.create(store.remove("hostile:0")).verifyComplete();
        // What a crash of a remove left: the layer itself is the removed- entry.
        Image second = store.get("hostile:1").block(TIMEOUT);
        Files.move(layer(second.layers().getFirst()), root.resolve("tmp/removed-" + UUID.randomUUID()));
        // And a dead import's scratch whose owner is a symlink.
        Path deadScratch = Files.createDirectories(root.resolve("tmp").resolve(UUID.randomUUID().toString()));
        Files.createSymbolicLink(deadScratch.resolve("owner"), Path.of("/dev/tty"));

        Image other = importAs(OciLayouts.image().layer(OciLayouts.tar("y", "y")), "other:1");

        assertThat(other.name()).isEqualTo("other:1");
        assertThat(ImageStoreTest.names(root.resolve("tmp"))).isEmpty();
    }

    @Test
    void removesOfALayerWithAnOwnerSymlinkRaceImportsWithoutFailingThem() throws Exception {
        TarLayers many = TarLayers.layer().symlink("owner", "x");
        for (int i = 0; i < 2000; i++) {
            many.file("f" + i, "x", 0644);
        }
        Path hostile = OciLayouts.layout().tagged(OciLayouts.image().layer(many.bytes()), "1")
                .writeDirectory(temp.resolve("hostile"));
        Path other = OciLayouts.layout().tagged(OciLayouts.image().layer(OciLayouts.tar("y", "y")), "1")
                .writeDirectory(temp.resolve("other"));
        List<Throwable> failures = new ArrayList<>();
        for (int round = 0; round < 3; round++) {
            store.importLayout(ImportRequest.of(hostile).withName("hostile:1")).block(TIMEOUT);
            Mono<Void> removing = store.remove("hostile:1").cache();
            removing.subscribe(done -> {}, failures::add);
            for (int i = 0; i < 10; i++) {
                try {
                    store.importLayout(ImportRequest.of(other).withName("other:" + i)).block(TIMEOUT);
                } catch (RuntimeException e) {
                    failures.add(e);
                }
            }
            removing.onErrorComplete().block(TIMEOUT);
        }
        assertThat(failures).isEmpty();
        assertThat(ImageStoreTest.names(root.resolve("layers"))).as("other's layer only").hasSize(1);
    }

    @Test
    void aSweepThatCannotDeleteADeadEntryLogsItAndTheImportGoesOn() throws Exception {
        // A dead import's scratch with a mount in it (a user's, say): the sweep must not delete across it, and
        // that is no failure of the import that swept.
        store.importLayout(ImportRequest.of(OciLayouts.layout().tagged(OciLayouts.image()
                .layer(OciLayouts.tar("y", "y")), "1").writeDirectory(temp.resolve("first")))
                .withName("first:1")).block(TIMEOUT);
        Path dead = Files.createDirectories(root.resolve("tmp").resolve(UUID.randomUUID().toString()));
        Path mounted = Files.createDirectory(dead.resolve("mounted"));
        LinuxCalls.mount("tmpfs", mounted.toString(), "tmpfs", 0, null);
        try {
            Image other = importAs(OciLayouts.image().layer(OciLayouts.tar("z", "z")), "other:1");

            assertThat(other.name()).isEqualTo("other:1");
            assertThat(ImageStoreTest.names(root.resolve("tmp"))).containsExactly(dead.getFileName().toString());
            StepVerifier.create(store.remove("other:1")).verifyComplete();
        } finally {
            LinuxCalls.umount2(mounted.toString(), LinuxCalls.MNT_DETACH);
        }
        StepVerifier.create(store.remove("first:1")).verifyComplete();
        assertThat(ImageStoreTest.names(root.resolve("layers"))).isEmpty();
    }

    private Image importAs(OciLayouts.Image image, String name) throws IOException {
        Path layout = OciLayouts.layout().tagged(image, "1")
                .writeDirectory(temp.resolve("layout-" + UUID.randomUUID()));
        return store.importLayout(ImportRequest.of(layout).withName(name)).block(TIMEOUT);
    }

    private Path bundleFrom(String digest, String id) throws IOException {
        Path bundle = Files.createDirectories(temp.resolve("state/ns").resolve(id));
        Files.writeString(bundle.resolve("config.json"), "{\"annotations\":{\"" + ImageStore.DIGEST_ANNOTATION
                + "\":\"" + digest + "\"}}");
        return bundle;
    }

    private static void delete(Path bundle) throws IOException {
        Files.delete(bundle.resolve("config.json"));
        Files.delete(bundle);
    }

    private Path layer(String chainId) {
        return root.resolve("layers").resolve(hex(chainId));
    }

    private static String hex(String id) {
        return id.substring("sha256:".length());
    }
}
