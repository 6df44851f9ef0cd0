package org.shimmer.runtime.linux.sys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LinuxCallsTest {

    @TempDir
    Path dir;

    @Test
    void lstatAnswersAbsenceWithNullAndNeverFollowsASymlink() throws IOException {
        Path file = Files.writeString(dir.resolve("file"), "x");
        Path sub = Files.createDirectory(dir.resolve("sub"));
        Path link = Files.createSymbolicLink(dir.resolve("link"), sub);
        Path dangling = Files.createSymbolicLink(dir.resolve("dangling"), dir.resolve("nothing"));

        assertThat(LinuxCalls.lstat(dir.resolve("absent"))).isNull();
        assertThat(LinuxCalls.lstat(sub.resolve("absent").resolve("deeper"))).isNull();
        assertThat(LinuxCalls.lstat(sub).isDirectory()).isTrue();
        assertThat(LinuxCalls.lstat(file).isDirectory()).isFalse();
        assertThat(LinuxCalls.lstat(link).isSymlink()).isTrue();
        assertThat(LinuxCalls.lstat(link).isDirectory()).isFalse();
        assertThat(LinuxCalls.lstat(dangling).isSymlink()).isTrue();
    }

    @Test
    void isDirectoryNoFollowAnswersAsTheJdkDoes() throws IOException {
        Path file = Files.writeString(dir.resolve("file"), "x");
        Path sub = Files.createDirectory(dir.resolve("sub"));
        Path link = Files.createSymbolicLink(dir.resolve("link"), sub);

        for (Path path : new Path[] {file, sub, link, dir.resolve("absent"), file.resolve("below")}) {
            assertThat(LinuxCalls.isDirectoryNoFollow(path)).as(path.toString())
                    .isEqualTo(Files.isDirectory(path, java.nio.file.LinkOption.NOFOLLOW_LINKS));
        }
        assertThat(LinuxCalls.isDirectoryNoFollow(sub)).isTrue();
        assertThat(LinuxCalls.isDirectoryNoFollow(link)).isFalse();
    }

    @Test
    void lstatStillFailsOnWhatIsNotAbsence() throws IOException {
        Path file = Files.writeString(dir.resolve("file"), "x");

        // A file where a directory is needed is an error, not "nothing there".
        assertThatThrownBy(() -> LinuxCalls.lstat(file.resolve("below")))
                .isInstanceOf(IOException.class).hasMessageContaining("below");
    }
}
