package org.shimmer.runtime.linux.image;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.image.ImportRequest;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.Leftovers;
import org.shimmer.runtime.linux.testing.OciLayouts;
import org.shimmer.runtime.linux.testing.TarLayers;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.spec.Spec;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;

/**
 * A runtime closed (a plugin stop) at any moment of a run from an image: the next runtime on the same roots, in the
 * same JVM (a reload), force-deletes what the run left and then removes the image, leaving nothing. The stopped
 * run's lease must not stay locked by this JVM.
 */
class ImageRunStopTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "image-stop";
    private static final String NAME = "stop:v1";

    @TempDir
    Path temp;

    private final List<RuntimeResources> opened = new ArrayList<>();

    @AfterEach
    void checkNothingIsLeft() throws Exception {
        try {
            Leftovers.assertNoneUnder(temp, NS, () -> {
                assertThat(Leaks.awaitNoProcessesOf(temp.toRealPath(), NS, Duration.ofSeconds(5)))
                        .as("container processes").isEmpty();
            });
        } finally {
            for (RuntimeResources resources : opened) {
                resources.close();
            }
        }
    }

    @Test
    void aRuntimeClosedAnywhereInARunFromAnImageLeavesWhatTheNextOneCleansUp() throws Exception {
        RuncOptions runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
        Random random = new Random(5);
        List<String> outcomes = new ArrayList<>();
        for (int round = 0; round < 16; round++) {
            String kind = round % 4 == 3 ? "remote" : "local";
            LinuxRuntime runtime = runtime();
            Image image = runtime.images().importLayout(ImportRequest.of(layout()).withName(NAME)).block(TIMEOUT);
            String id = "s" + round;
            ShimOpt shim = kind.equals("local") ? ShimOpt.local()
                    : ShimOpt.remote(Path.of("containerd-shim-runc-v2"), temp.resolve("daemon.sock").toString(),
                            null, false, null);
            CompletableFuture<Object> run = new CompletableFuture<>();
            runtime.run(RunRequest.of(NS, id, Spec.builder().build(), image).withShim(shim).withRuncOptions(runc))
                    .subscribe(run::complete, run::complete);
            long delay = random.nextInt(600);
            Thread.sleep(delay);
            opened.getLast().close();
            Object result = run.completeOnTimeout("no outcome", TIMEOUT.toSeconds(), TimeUnit.SECONDS).get();
            String what = id + " (" + kind + ") stopped " + delay + " ms into its run: " + result;
            outcomes.add(what);

            LinuxRuntime next = runtime();
            next.forceDelete(NS, id).block(TIMEOUT);
            next.images().remove(NAME).block(TIMEOUT);
            assertThat(ImageStoreTest.names(next.config().imageRoot().resolve("layers"))).as(what).isEmpty();
            assertThat(ImageStoreTest.names(next.config().imageRoot().resolve("leases"))).as(what).isEmpty();
            if (result instanceof Container) {
                // Handed out before the stop: its release is the host's, and the forced delete did it.
                outcomes.add("  (container handed out)");
            }
        }
        System.out.println("A runtime closed in a run from an image:\n" + String.join("\n", outcomes));
    }

    /**
     * A run from an image cancelled at any moment: its undo lets go of the lease, so once a run of the same id (which
     * waits for that undo) has ended, the image removes to nothing, and no descriptor of the store stays open.
     */
    @Test
    void aRunFromAnImageCancelledAnywhereLetsGoOfItsLease() throws Exception {
        RuncOptions runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
        LinuxRuntime runtime = runtime();
        Image image = runtime.images().importLayout(ImportRequest.of(layout()).withName(NAME)).block(TIMEOUT);
        Map<Integer, String> fds = Leaks.openFds();
        Random random = new Random(7);
        for (int round = 0; round < 16; round++) {
            String id = "c" + round;
            ShimOpt shim = round % 4 == 3 ? ShimOpt.remote(Path.of("containerd-shim-runc-v2"),
                    temp.resolve("daemon.sock").toString(), null, false, null) : ShimOpt.local();
            CompletableFuture<Container> taken = new CompletableFuture<>();
            Disposable run = runtime.run(RunRequest.of(NS, id, Spec.builder().build(), image)
                    .withShim(shim).withRuncOptions(runc)).subscribe(taken::complete, error -> { });
            Thread.sleep(random.nextInt(500));
            run.dispose();
            if (taken.isDone()) {
                // Handed out before the cancel: the caller's to release.
                taken.get().release().block(TIMEOUT);
            }
            Spec quick = Spec.builder().args("/bin/busybox", "true").build();
            Integer status = Mono.usingWhen(runtime.run(RunRequest.of(NS, id, quick, image)
                    .withRuncOptions(runc)), container -> container.exit().map(exit -> exit.status()),
                    Container::release).block(TIMEOUT);
            assertThat(status).as(id).isZero();
        }
        runtime.images().remove(NAME).block(TIMEOUT);
        assertThat(ImageStoreTest.names(runtime.config().imageRoot().resolve("layers"))).isEmpty();
        assertThat(ImageStoreTest.names(runtime.config().imageRoot().resolve("leases"))).isEmpty();
        assertThat(Leaks.fdsAddedSince(fds, Duration.ofSeconds(5)).values()).as("descriptors left open")
                .noneMatch(target -> target.startsWith(runtime.config().imageRoot().toString()));
    }

    private LinuxRuntime runtime() {
        RuntimeResources resources = new RuntimeResources("image-stop-test-");
        opened.add(resources);
        return new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
    }

    private Path layout() throws Exception {
        Path dir = temp.resolve("layout");
        if (!Files.exists(dir)) {
            byte[] busybox = Files.readAllBytes(BusyboxBundle.BUSYBOX);
            OciLayouts.Image built = OciLayouts.image()
                    .layer(TarLayers.layer().dir("bin", 0755).file("bin/busybox", busybox, 0755, e -> {})
                            .symlink("bin/sh", "busybox").bytes())
                    .cmd("/bin/busybox", "sleep", "60");
            OciLayouts.layout().tagged(built, "v1").writeDirectory(dir);
        }
        return dir;
    }
}
