package org.shimmer.runtime.linux.ttrpc;

import java.io.IOException;
import java.net.ConnectException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

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
    private static final int BIND_NAME_LENGTH = 13;
    private static final String BIND_NAME_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789";
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

    /**
     * A private name beside {@code socket} for a server to bind at before {@link #publish} links the socket to its
     * address: a dot and twelve random letters, fewer when the directory's path leaves less room in a socket
     * address (the address itself fits: {@link #prepareForBind} checked).
     */
    static Path bindName(Path socket) {
        Path absolute = socket.toAbsolutePath();
        int room = MAX_PATH_BYTES - absolute.getParent().toString().getBytes(StandardCharsets.UTF_8).length - 1;
        int length = Math.max(2, Math.min(BIND_NAME_LENGTH, room));
        StringBuilder name = new StringBuilder(".");
        ThreadLocalRandom random = ThreadLocalRandom.current();
        while (name.length() < length) {
            name.append(BIND_NAME_LETTERS.charAt(random.nextInt(BIND_NAME_LETTERS.length())));
        }
        return absolute.resolveSibling(name.toString());
    }

    /**
     * Makes the socket bound at {@code bindName} 0600 and links it to {@code socket}, which must not exist (link never
     * replaces a file), then removes the private name; returns the socket file's identity (device and inode), for
     * {@link #removeIfSame}. Why not bind at the address itself: netty's server channel removes the path it bound
     * when it closes, whatever file is there by then. A server whose socket was removed while it served (an
     * operator's cleanup) and bound again by another (a new shim daemon) took the new one's address away as it
     * stopped. And the socket is 0600 before anyone can reach it.
     */
    static Object publish(Path bindName, Path socket) throws IOException {
        try {
            Files.setPosixFilePermissions(bindName, SOCKET_MODE);
            Object identity = identity(bindName);
            try {
                Files.createLink(socket, bindName);
            } catch (FileAlreadyExistsException taken) {
                throw new AddressInUseException("cannot bind " + socket + ": another server bound it meanwhile");
            }
            return identity;
        } finally {
            Files.deleteIfExists(bindName);
        }
    }

    private static Object identity(Path socket) throws IOException {
        return Files.readAttributes(socket, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
    }

    /**
     * Removes {@code socket} if it is still the file {@link #publish} linked there. A server must never
     * remove another's socket: if its own was removed while it served and a second server bound the same path (a
     * new shim daemon after an operator's cleanup), removing by path alone would take the second's address away
     * when the first stopped. Returns whether it removed the file.
     */
    static boolean removeIfSame(Path socket, Object identity) throws IOException {
        Object now;
        try {
            now = identity(socket);
        } catch (NoSuchFileException gone) {
            return false;
        }
        return identity.equals(now) && Files.deleteIfExists(socket);
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
