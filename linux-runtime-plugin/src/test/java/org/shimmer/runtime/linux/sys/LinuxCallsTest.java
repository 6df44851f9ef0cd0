package org.shimmer.runtime.linux.sys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

class LinuxCallsTest {

    @TempDir
    Path dir;

    @Test
    @Timeout(10)
    void probeUnixTellsAListenerAFullQueueAStaleSocketAndNoFileApartWithoutWaiting() throws Exception {
        Path socket = dir.resolve("probe.sock");
        assertThat(LinuxCalls.probeUnix(socket)).isEqualTo(LinuxCalls.UnixProbe.ABSENT);
        List<SocketChannel> queued = new ArrayList<>();
        try (ServerSocketChannel listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            listener.bind(UnixDomainSocketAddress.of(socket), 1);
            assertThat(LinuxCalls.probeUnix(socket)).isEqualTo(LinuxCalls.UnixProbe.LISTENING);
            // A listener that accepts nothing: its queue fills, and a blocking connect would wait for good there.
            int refusedForAFullQueue = 0;
            for (int i = 0; i < 4; i++) {
                SocketChannel client = SocketChannel.open(StandardProtocolFamily.UNIX);
                client.configureBlocking(false);
                try {
                    client.connect(UnixDomainSocketAddress.of(socket));
                    queued.add(client);
                } catch (IOException full) {
                    refusedForAFullQueue++;
                    client.close();
                }
            }
            assertThat(refusedForAFullQueue).as("the queue filled").isPositive();
            assertThat(LinuxCalls.probeUnix(socket)).isEqualTo(LinuxCalls.UnixProbe.LISTENING);
        } finally {
            for (SocketChannel client : queued) {
                client.close();
            }
        }
        assertThat(socket).exists();
        assertThat(LinuxCalls.probeUnix(socket)).isEqualTo(LinuxCalls.UnixProbe.REFUSED);
        // Any other failure is thrown, naming the path (a file is refused as a socket nobody serves: the kernel's
        // ECONNREFUSED; callers check for a socket first).
        Path file = Files.writeString(dir.resolve("plain"), "not a socket");
        assertThat(LinuxCalls.probeUnix(file)).isEqualTo(LinuxCalls.UnixProbe.REFUSED);
        assertThatThrownBy(() -> LinuxCalls.probeUnix(file.resolve("below")))
                .isInstanceOf(LinuxCalls.ErrnoException.class).hasMessageContaining(file.resolve("below").toString());
    }

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
