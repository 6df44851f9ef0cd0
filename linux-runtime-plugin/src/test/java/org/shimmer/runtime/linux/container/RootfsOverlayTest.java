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
    void lowersTopFirstUnderTheWorkDirectorysUpper() {
        Path work = Path.of("/w/ns/c1");
        Mount mount = RootfsOverlay.mount("ns/c1", List.of(Path.of("/l/top"), Path.of("/l/bottom")), work);

        assertThat(mount.type()).isEqualTo("overlay");
        assertThat(mount.options()).containsExactly("index=off", "lowerdir=/l/top:/l/bottom",
                "upperdir=/w/ns/c1/rootfs/upper", "workdir=/w/ns/c1/rootfs/work");
    }

    @Test
    void optionsOfOnePageAreTakenAndOneByteMoreIsRefusedNamingTheLayerCount() {
        Path work = Path.of("/w/ns/c1");
        String fixed = String.join(",", RootfsOverlay.mount("ns/c1", List.of(Path.of("/x")), work).options());
        // One lower of the length that makes the options exactly one page, NUL excluded.
        int room = RootfsOverlay.MAX_DATA - (fixed.length() - 2);
        Path fits = Path.of("/" + "a".repeat(room - 1));
        assertThat(String.join(",", RootfsOverlay.mount("ns/c1", List.of(fits), work).options()))
                .hasSize(RootfsOverlay.MAX_DATA);

        List<Path> many = new ArrayList<>();
        IntStream.range(0, 60).forEach(i -> many.add(Path.of("/var/lib/images/layers/sha256/" + "0".repeat(64 - 2)
                + String.format("%02d", i))));
        assertThatThrownBy(() -> RootfsOverlay.mount("ns/c1", many, work))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("60 layers")
                .hasMessageContaining("4095");
    }

    @Test
    void aPathOverlayCannotNameIsRefused() {
        for (String bad : List.of("/a,b", "/a:b", "/a\\b")) {
            assertThatThrownBy(() -> RootfsOverlay.mount("ns/c1", List.of(Path.of(bad)), Path.of("/w")))
                    .isInstanceOf(InvalidSpecException.class)
                    .hasMessageContaining(bad);
        }
        assertThatThrownBy(() -> RootfsOverlay.mount("ns/c1", List.of(), Path.of("/w")))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("no lower layer");
    }

    @Test
    void prepareMakesAnUpperOfMode755AndAPrivateWorkDirectoryOnlyOnce() throws Exception {
        Path work = Files.createDirectory(temp.resolve("c1"));
        RootfsOverlay.prepare("ns/c1", List.of(temp), work);

        Path dir = work.resolve(RootfsOverlay.DIR);
        assertThat(Files.getPosixFilePermissions(dir.resolve(RootfsOverlay.UPPER)))
                .isEqualTo(PosixFilePermissions.fromString("rwxr-xr-x"));
        assertThat(Files.getPosixFilePermissions(dir.resolve(RootfsOverlay.WORK)))
                .isEqualTo(PosixFilePermissions.fromString("rwx------"));
        assertThatThrownBy(() -> RootfsOverlay.prepare("ns/c1", List.of(temp), work))
                .isInstanceOf(FileAlreadyExistsException.class);
    }
}
