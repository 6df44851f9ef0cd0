package org.shimmer.runtime.linux.container;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.shim.Mount;

/** The overlay a container's root is mounted with: its options, what it refuses, and what it makes on disk. */
class RootfsOverlayTest {

    @TempDir
    Path temp;

    @Test
    void lowersTopFirstAsLinksInTheWorkDirectoryUnderItsUpper() {
        Path work = Path.of("/w/ns/c1");
        Mount mount = RootfsOverlay.mount("ns/c1", List.of(Path.of("/l/top"), Path.of("/l/bottom")), work);

        assertThat(mount.type()).isEqualTo("overlay");
        assertThat(mount.options()).containsExactly("index=off", "lowerdir=/w/ns/c1/rootfs/l/0:/w/ns/c1/rootfs/l/1",
                "upperdir=/w/ns/c1/rootfs/upper", "workdir=/w/ns/c1/rootfs/work");
    }

    /**
     * The options are measured as a shim gives them to mount(2) when they exceed a page: lowers relative to
     * {@code l/}. A hundred layers of 90-byte paths, which as paths needed twice a page, fit; a work root too long
     * for even that is refused naming the layer count and the limit.
     */
    @Test
    void aHundredLayersFitAndOptionsBeyondAPageEvenRelativeAreRefused() {
        Path work = Path.of("/var/lib/shimmer/work/default/a-container-with-a-rather-long-name");
        List<Path> hundred = new ArrayList<>();
        IntStream.range(0, 100).forEach(i -> hundred.add(Path.of("/var/lib/shimmer/work-images/layers/"
                + "0".repeat(62) + String.format("%02d", i))));
        Mount mount = RootfsOverlay.mount("ns/c1", hundred, work);
        assertThat(String.join(",", mount.options()).length()).isGreaterThan(RootfsOverlay.MAX_DATA);
        assertThat(mount.options().get(1)).startsWith("lowerdir=" + work + "/rootfs/l/0:" + work + "/rootfs/l/1:")
                .endsWith("/rootfs/l/99");

        Path longWork = Path.of("/" + "w".repeat(2000));
        assertThatThrownBy(() -> RootfsOverlay.mount("ns/c1", hundred, longWork))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("100 layers")
                .hasMessageContaining("4095");
        List<Path> thousand = new ArrayList<>();
        IntStream.range(0, 1200).forEach(i -> thousand.add(Path.of("/l/" + i)));
        assertThatThrownBy(() -> RootfsOverlay.mount("ns/c1", thousand, work))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("1200 layers");
    }

    /** A lower's path is only a link's target: any character goes; the work directory's path is checked. */
    @Test
    void aWorkDirectoryOverlayCannotNameIsRefusedAndALowerMayHoldAnything() {
        for (String odd : List.of("/a,b", "/a:b", "/a\\b")) {
            assertThat(RootfsOverlay.mount("ns/c1", List.of(Path.of(odd)), Path.of("/w")).options())
                    .contains("lowerdir=/w/rootfs/l/0");
            assertThatThrownBy(() -> RootfsOverlay.mount("ns/c1", List.of(Path.of("/l")), Path.of(odd)))
                    .isInstanceOf(InvalidSpecException.class)
                    .hasMessageContaining(odd);
        }
        assertThatThrownBy(() -> RootfsOverlay.mount("ns/c1", List.of(), Path.of("/w")))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("no lower layer");
    }

    @Test
    void prepareMakesAnUpperOfMode755APrivateWorkDirectoryAndTheLinksOnlyOnce() throws Exception {
        Path work = Files.createDirectory(temp.resolve("c1"));
        RootfsOverlay.prepare("ns/c1", List.of(temp), work);

        Path dir = work.resolve(RootfsOverlay.DIR);
        assertThat(Files.getPosixFilePermissions(dir.resolve(RootfsOverlay.UPPER)))
                .isEqualTo(PosixFilePermissions.fromString("rwxr-xr-x"));
        assertThat(Files.getPosixFilePermissions(dir.resolve(RootfsOverlay.WORK)))
                .isEqualTo(PosixFilePermissions.fromString("rwx------"));
        assertThat(Files.readSymbolicLink(dir.resolve(RootfsOverlay.LINKS).resolve("0"))).isEqualTo(temp);
        assertThatThrownBy(() -> RootfsOverlay.prepare("ns/c1", List.of(temp), work))
                .isInstanceOf(FileAlreadyExistsException.class);
    }
}
