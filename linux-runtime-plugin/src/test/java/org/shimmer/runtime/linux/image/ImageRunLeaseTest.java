package org.shimmer.runtime.linux.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.image.ImportRequest;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.spec.CgroupsLeft;
import org.shimmer.runtime.linux.sys.MountTable;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.OciLayouts;
import org.shimmer.runtime.linux.testing.TarLayers;
import org.shimmer.runtime.linux.testing.Zombies;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.spec.Spec;
import reactor.core.Disposable;

/**
 * A remove racing a run from its image, through {@code LinuxRuntime}: the run's lease is live from the moment it
 * is taken (its file flock'ed until the bundle exists), so the remove either comes first and the run fails with
 * {@link NotFoundException}, or is refused and the run gets its layers. A remove between the lease and the
 * bundle's {@code config.json} once took the layers, and the run failed with a raw mount ENOENT.
 */
class ImageRunLeaseTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "lease-test";

    @TempDir
    Path temp;

    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private RuncOptions runc;

    @BeforeEach
    void startRuntime() {
        resources = new RuntimeResources("lease-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
        runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
    }

    @AfterEach
    void checkNothingIsLeft() throws Exception {
        try {
            if (Files.isDirectory(temp.resolve("state").resolve(NS))) {
                try (Stream<Path> left = Files.list(temp.resolve("state").resolve(NS))) {
                    assertThat(left).as("bundles left").isEmpty();
                }
            }
            assertThat(Leaks.runcContainers(temp.resolve("runc").resolve(NS))).as("runc containers").isEmpty();
            assertThat(MountTable.atOrUnder(MountTable.mountPoints(), temp.toRealPath())).as("mounts left")
                    .isEmpty();
            assertThat(Zombies.awaitNone(Duration.ofSeconds(5))).as("zombie children of the JVM").isEmpty();
            CgroupsLeft.assertNoneUnder(temp.resolve("state"), NS);
        } finally {
            resources.close();
        }
    }

    @Test
    void aRemoveRacingARunEitherComesFirstOrIsRefused() throws Exception {
        byte[] busybox = Files.readAllBytes(BusyboxBundle.BUSYBOX);
        OciLayouts.Image built = OciLayouts.image()
                .layer(TarLayers.layer().dir("bin", 0755).file("bin/busybox", busybox, 0755, e -> {})
                        .symlink("bin/sh", "busybox").bytes())
                .entrypoint("/bin/busybox", "true");
        Path layout = OciLayouts.layout().tagged(built, "v1").writeDirectory(temp.resolve("layout"));
        List<String> outcomes = new ArrayList<>();
        for (int round = 0; round < 8; round++) {
            Image image = runtime.images().importLayout(ImportRequest.of(layout).withName("race:v1"))
                    .block(TIMEOUT);
            AtomicReference<Object> run = new AtomicReference<>();
            Disposable running = runtime.run(RunRequest.of(NS, "r" + round, Spec.builder().build(), image)
                    .withShim(ShimOpt.local()).withRuncOptions(runc)).subscribe(run::set, run::set);
            // Removes from the moment the run starts until one succeeds or the run ends, so that some land
            // between its lease and its bundle.
            String removed = "refused";
            while (run.get() == null) {
                try {
                    runtime.images().remove("race:v1").block(TIMEOUT);
                    removed = "removed";
                    break;
                } catch (FailedPreconditionException refused) {
                    // In use: the run holds it.
                } catch (NotFoundException gone) {
                    removed = "removed";
                    break;
                }
            }
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            while (run.get() == null && System.nanoTime() < deadline) {
                Thread.onSpinWait();
            }
            Object result = run.get();
            running.dispose();
            outcomes.add(round + ": " + removed + ", " + result);
            if (result instanceof Container container) {
                assertThat(container.exit().block(TIMEOUT).status()).as(outcomes.getLast()).isZero();
                container.release().block(TIMEOUT);
            } else {
                assertThat(result).as(outcomes.getLast()).isInstanceOf(NotFoundException.class);
                assertThat(removed).as(outcomes.getLast()).isEqualTo("removed");
            }
        }
        System.out.println("Outcomes of a remove racing a run:\n" + String.join("\n", outcomes));
        runtime.images().remove("race:v1").onErrorComplete(NotFoundException.class).block(TIMEOUT);
        Path images = runtime.config().imageRoot();
        assertThat(ImageStoreTest.names(images.resolve("layers"))).isEmpty();
        assertThat(ImageStoreTest.names(images.resolve("leases"))).isEmpty();
        assertThat(ImageStoreTest.names(images.resolve("tmp"))).isEmpty();
    }

    @Test
    void aFailedRunOfTheIdOfARunningContainerLeavesThatContainersLease() throws Exception {
        byte[] busybox = Files.readAllBytes(BusyboxBundle.BUSYBOX);
        OciLayouts.Image built = OciLayouts.image()
                .layer(TarLayers.layer().dir("bin", 0755).file("bin/busybox", busybox, 0755, e -> {})
                        .symlink("bin/sh", "busybox").bytes());
        Path layout = OciLayouts.layout().tagged(built, "v1").writeDirectory(temp.resolve("layout"));
        Image image = runtime.images().importLayout(ImportRequest.of(layout).withName("held:v1")).block(TIMEOUT);
        Container running = runtime.run(RunRequest.of(NS, "x", Spec.builder().args("/bin/busybox", "sleep", "30")
                .build(), image).withRuncOptions(runc)).block(TIMEOUT);
        try {
            // Same id and image, no command at all: fails merging the spec, before the bundle's AlreadyExists. Its
            // rollback once deleted the lease file it shares with the running container, and the remove below
            // then took the running container's /bin.
            assertThatThrownBy(() -> runtime.run(RunRequest.of(NS, "x", Spec.builder().build(), image)
                    .withRuncOptions(runc)).block(TIMEOUT)).isInstanceOf(InvalidSpecException.class);
            assertThatThrownBy(() -> runtime.images().remove("held:v1").block(TIMEOUT))
                    .isInstanceOf(FailedPreconditionException.class).hasMessageContaining(NS + "/x");
            String bin = running.exec("ls", "/bin/busybox", "ls", "/bin")
                    .flatMap(ls -> ls.stdout().map(String::new).reduce("", String::concat))
                    .block(TIMEOUT);
            assertThat(bin).contains("busybox", "sh");
        } finally {
            running.kill(9).onErrorComplete().block(TIMEOUT);
            running.release().block(TIMEOUT);
        }
        runtime.images().remove("held:v1").block(TIMEOUT);
        assertThat(ImageStoreTest.names(runtime.config().imageRoot().resolve("layers"))).isEmpty();
    }
}
