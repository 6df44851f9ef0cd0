package org.shimmer.runtime.linux.ttrpc;

import java.io.IOException;
import java.net.ConnectException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * Filesystem unix sockets, made safe to serve on.
 *
 * <p>Invariants: only filesystem sockets, never abstract ones (CVE-2020-15257: abstract sockets ignore file
 * permissions, so any process in the network namespace could connect); a socket lives in a directory only its
 * owner can enter (0700, or stricter such as containerd's 0600 {@code /run/containerd/s}) and is itself 0600.
 */
final class UnixSockets {

    /** {@code sun_path} holds 108 bytes with the terminating NUL. */
    static final int MAX_PATH_BYTES = 107;

    private static final Set<PosixFilePermission> DIR_MODE = PosixFilePermissions.fromString("rwx------");
    private static final Set<PosixFilePermission> SOCKET_MODE = PosixFilePermissions.fromString("rw-------");
    private static final int S_IFMT = 0170000;
    private static final int S_IFSOCK = 0140000;

    private UnixSockets() {}

    /**
     * Readies {@code socket} for bind: checks its length, makes its directory 0700 if it is missing, refuses a
     * directory others can enter, and removes a stale socket file — one nobody serves on any more.
     *
     * @throws IOException naming the path and the problem
     */
    static void prepareForBind(Path socket) throws IOException {
        int length = socket.toString().getBytes(StandardCharsets.UTF_8).length;
        if (length > MAX_PATH_BYTES) {
            throw new IOException("unix socket path " + socket + " is " + length + " bytes, more than the "
                    + MAX_PATH_BYTES + " a socket address holds");
        }
        Path dir = socket.toAbsolutePath().getParent();
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(DIR_MODE));
            Files.setPosixFilePermissions(dir, DIR_MODE);
        }
        Set<PosixFilePermission> dirMode = Files.getPosixFilePermissions(dir, LinkOption.NOFOLLOW_LINKS);
        // Only the owner may enter: 0700, or stricter, as containerd's shims leave /run/containerd/s (0600).
        if (!DIR_MODE.containsAll(dirMode)) {
            throw new IOException("socket directory " + dir + " must be mode 0700 (rwx------) or stricter, is "
                    + PosixFilePermissions.toString(dirMode));
        }
        if (Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) {
            if (!isSocket(socket)) {
                throw new IOException("cannot bind " + socket + ": a file that is not a socket is in the way");
            }
            if (isServed(socket)) {
                throw new AddressInUseException("cannot bind " + socket + ": another server is listening on it");
            }
            Files.deleteIfExists(socket);
        }
    }

    /** Makes a freshly bound socket 0600. */
    static void restrict(Path socket) throws IOException {
        Files.setPosixFilePermissions(socket, SOCKET_MODE);
    }

    static boolean isSocket(Path path) throws IOException {
        int mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        return (mode & S_IFMT) == S_IFSOCK;
    }

    private static boolean isServed(Path socket) throws IOException {
        try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            probe.connect(UnixDomainSocketAddress.of(socket));
            return true;
        } catch (ConnectException refused) {
            return false;
        }
    }
}
