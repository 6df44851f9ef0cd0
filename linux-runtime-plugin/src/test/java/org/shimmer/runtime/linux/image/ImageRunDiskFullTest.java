package org.shimmer.runtime.linux.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.ResourceExhaustedException;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.image.ImportRequest;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.spec.CgroupsLeft;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.MountTable;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.OciLayouts;
import org.shimmer.runtime.linux.testing.TarLayers;
import org.shimmer.runtime.linux.testing.Zombies;
import org.shimmer.runtime.spec.Spec;
import reactor.core.publisher.Mono;

/**
 * Runs from an image whose state, work and image roots share one small tmpfs: a container that fills it (blocks,
 * then inodes) through its overlay's upper directory ends, is released and its image removed on the full disk,
 * leaving nothing; a run on a disk already full fails as no space and leaves nothing either.
 */
class ImageRunDiskFullTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "image-full";
    private static final String NAME = "full:v1";

    @TempDir
    Path temp;

    private Path disk;
    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private RuncOptions runc;

    @BeforeEach
    void startRuntime() throws Exception {
        disk = Files.createDirectories(temp.resolve("disk"));
        LinuxCalls.mount("tmpfs", disk.toString(), "tmpfs", 0, "size=8m,nr_inodes=300");
        resources = new RuntimeResources("image-full-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(disk.resolve("state"), disk.resolve("work")), resources);
        runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
    }

    @AfterEach
    void checkNothingIsLeft() throws Exception {
        try {
            for (Path root : List.of(disk.resolve("state").resolve(NS), disk.resolve("work").resolve(NS))) {
                if (Files.isDirectory(root)) {
                    try (Stream<Path> left = Files.list(root)) {
                        assertThat(left).as("bundles left in " + root).isEmpty();
                    }
                }
            }
            Path images = runtime.config().imageRoot();
            for (String dir : List.of("layers", "leases", "tmp", "images")) {
                assertThat(ImageStoreTest.names(images.resolve(dir))).as(dir).isEmpty();
            }
            assertThat(Leaks.runcContainers(temp.resolve("runc").resolve(NS))).as("runc containers").isEmpty();
            assertThat(Leaks.awaitNoProcessesOf(temp.toRealPath(), NS, Duration.ofSeconds(5)))
                    .as("container processes").isEmpty();
            assertThat(MountTable.atOrUnder(MountTable.mountPoints(), temp.toRealPath()).stream()
                    .map(Object::toString)).as("mounts left").containsExactly(disk.toRealPath().toString());
            assertThat(Zombies.awaitNone(Duration.ofSeconds(5))).as("zombie children of the JVM").isEmpty();
            CgroupsLeft.assertNoneUnder(disk.resolve("state"), NS);
        } finally {
            resources.close();
            LinuxCalls.umount2(disk.toString(), LinuxCalls.MNT_DETACH);
        }
    }

    @Test
    void aContainerThatFillsTheDiskOfEveryRootIsReleasedAndItsImageRemoved() throws Exception {
        Image image = runtime.images().importLayout(ImportRequest.of(layout()).withName(NAME)).block(TIMEOUT);
        Spec spec = Spec.builder().args("/bin/sh", "-c", "i=0; while touch /f$i 2>/dev/null; do i=$((i+1)); done;"
                + " cat /dev/zero > /big 2>/dev/null; echo files $i; df -i / | tail -1").build();

        String out = Mono.usingWhen(runtime.run(RunRequest.of(NS, "filler", spec, image).withRuncOptions(runc)),
                container -> Mono.zip(container.stdout().map(String::new).reduce("", String::concat),
                        container.exit()).map(both -> both.getT1() + "exit " + both.getT2().status()),
                Container::release).block(TIMEOUT);

        assertThat(out).as("the container filled the disk").startsWith("files ").endsWith("exit 0");
        runtime.images().remove(NAME).block(TIMEOUT);
    }

    @Test
    void aRunOnADiskWithNoInodeLeftIsResourceExhaustedAndLeavesNothing() throws Exception {
        Image image = runtime.images().importLayout(ImportRequest.of(layout()).withName(NAME)).block(TIMEOUT);
        Path filler = Files.createDirectories(disk.resolve("filler"));
        for (int i = 0; ; i++) {
            try {
                Files.createFile(filler.resolve("f" + i));
            } catch (IOException full) {
                break;
            }
        }
        Spec spec = Spec.builder().args("/bin/busybox", "true").build();

        assertThatThrownBy(() -> runtime.run(RunRequest.of(NS, "late", spec, image).withRuncOptions(runc))
                .block(TIMEOUT)).isInstanceOf(ResourceExhaustedException.class);

        runtime.images().remove(NAME).block(TIMEOUT);
        deleteTree(filler);
    }

    private static void deleteTree(Path dir) throws Exception {
        try (Stream<Path> files = Files.list(dir)) {
            for (Path file : files.toList()) {
                Files.delete(file);
            }
        }
        Files.delete(dir);
    }

    private Path layout() throws Exception {
        byte[] busybox = Files.readAllBytes(BusyboxBundle.BUSYBOX);
        OciLayouts.Image built = OciLayouts.image()
                .layer(TarLayers.layer().dir("bin", 0755).file("bin/busybox", busybox, 0755, e -> {})
                        .symlink("bin/sh", "busybox").symlink("bin/df", "busybox").symlink("bin/tail", "busybox")
                        .symlink("bin/touch", "busybox").symlink("bin/cat", "busybox").bytes());
        return OciLayouts.layout().tagged(built, "v1").writeDirectory(temp.resolve("layout"));
    }
}
