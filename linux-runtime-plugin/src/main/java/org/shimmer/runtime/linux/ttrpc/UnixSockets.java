package org.shimmer.runtime.linux.ttrpc;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.time.Duration;
import java.time.Instant;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import org.shimmer.runtime.linux.sys.LinuxCalls;

/**
 * Filesystem unix sockets, made safe to serve on.
 *
 * <p>Invariants: only filesystem sockets, never abstract ones (CVE-2020-15257: abstract sockets ignore file
 * permissions, so any process in the network namespace could connect); a socket lives in a directory only its
 * owner can enter (0700, or stricter such as containerd's 0600 {@code /run/containerd/s}) and is itself 0600.
 */
final class UnixSockets {

    /**
     * {@code sun_path} holds 108 bytes, and the kernel takes a path that fills it without a NUL; the JDK's channels
     * refuse a path of more than 106 ("Unix domain path too long").
     */
    static final int MAX_PATH_BYTES = 106;

    private static final Set<PosixFilePermission> DIR_MODE = PosixFilePermissions.fromString("rwx------");
    private static final Set<PosixFilePermission> SOCKET_MODE = PosixFilePermissions.fromString("rw-------");
    private static final Duration LOCK_WAIT = Duration.ofSeconds(10);
    private static final int BIND_NAME_LENGTH = 13;
    private static final String BIND_NAME_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789";
    private static final int S_IFMT = 0170000;
    private static final int S_IFSOCK = 0140000;
    /** How old an unserved private name must be before another server takes it for abandoned. */
    private static final Duration ABANDONED_AFTER = Duration.ofMinutes(1);

    private UnixSockets() {}

    /**
     * Readies {@code socket}'s directory for bind: checks the address's length, refuses a directory that is a
     * symbolic link, makes the directory 0700 if it is missing and refuses one of another user or that others can
     * enter.
     *
     * @throws IOException naming the path and the problem
     */
    static void prepareDirectory(Path socket) throws IOException {
        int length = socket.toString().getBytes(StandardCharsets.UTF_8).length;
        if (length > MAX_PATH_BYTES) {
            throw new IOException("unix socket path " + socket + " is " + length + " bytes, more than the "
                    + MAX_PATH_BYTES + " a socket address holds");
        }
        Path dir = socket.toAbsolutePath().getParent();
        if (Files.isSymbolicLink(dir)) {
            // Refused before anything is made or changed: the chmod below follows a link, to whatever it names.
            throw new IOException("socket directory " + dir + " is a symbolic link");
        }
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(DIR_MODE));
            Files.setPosixFilePermissions(dir, DIR_MODE);
        }
        // Its owner can rename our socket away and link its own in: clients (shims running as root) would then
        // talk to that user's server. Only a directory of the process's own (effective) user is ours.
        // The effective uid from /proc/self/status: /proc/self itself is root's in a process that is not dumpable
        // (a JVM given file capabilities), which would refuse a non-root runtime its own directory.
        int owner = (Integer) Files.getAttribute(dir, "unix:uid", LinkOption.NOFOLLOW_LINKS);
        int self = effectiveUid();
        if (owner != self) {
            throw new IOException("socket directory " + dir + " belongs to uid " + owner
                    + ", not to this process's effective uid " + self);
        }
        Set<PosixFilePermission> dirMode = Files.getPosixFilePermissions(dir, LinkOption.NOFOLLOW_LINKS);
        // Only the owner may enter: 0700, or stricter, as containerd's shims leave /run/containerd/s (0600).
        if (!DIR_MODE.containsAll(dirMode)) {
            throw new IOException("socket directory " + dir + " must be mode 0700 (rwx------) or stricter, is "
                    + PosixFilePermissions.toString(dirMode));
        }
    }

    /**
     * Removes a stale socket at {@code socket}, one nobody serves any more; refuses a live one or a file that is not
     * a socket. Under the directory's lock ({@link #lockDirectory}).
     *
     * @throws IOException naming the path and the problem
     */
    static void removeStale(Path socket) throws IOException {
        if (!Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        int lock = lockDirectory(socket);
        try {
            removeStaleLocked(socket);
        } finally {
            LinuxCalls.close(lock);
        }
    }

    /** {@link #removeStale} by a caller that holds the directory's lock. */
    static void removeStaleLocked(Path socket) throws IOException {
        try {
            if (!Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) {
                return;
            }
            if (!isSocket(socket)) {
                throw new IOException("cannot bind " + socket + ": a file that is not a socket is in the way");
            }
            Object stale = identity(socket);
            if (isServed(socket)) {
                throw new AddressInUseException("cannot bind " + socket + ": another server is listening on it");
            }
            removeIfSameLocked(socket, stale);
        } catch (NoSuchFileException gone) {
            // Removed meanwhile (by another server's stale check): nothing in the way.
        }
    }

    /**
     * Removes the private names ({@link #bindName}) that servers killed between their bind and their link left in
     * {@code socket}'s directory: sockets named as that method names them, that nobody listens on and that were made
     * more than a minute ago (a socket's modification time is its bind's). A server bound at its private name listens from its bind on and links it within
     * milliseconds, so such a file's server is gone (a host killed by SIGKILL in that window left it for good).
     * Returns how many it removed.
     */
    static int removeAbandonedBindNames(Path socket) throws IOException {
        Path dir = socket.toAbsolutePath().getParent();
        FileTime before = FileTime.from(Instant.now().minus(ABANDONED_AFTER));
        int removed = 0;
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir, UnixSockets::looksLikeBindName)) {
            for (Path entry : entries) {
                try {
                    FileTime made = Files.getLastModifiedTime(entry, LinkOption.NOFOLLOW_LINKS);
                    if (made.compareTo(before) < 0 && isSocket(entry)
                            && LinuxCalls.probeUnix(entry) == LinuxCalls.UnixProbe.REFUSED
                            && Files.deleteIfExists(entry)) {
                        removed++;
                    }
                } catch (NoSuchFileException gone) {
                    // Removed meanwhile, by its server or another sweep.
                }
            }
        }
        return removed;
    }

    private static boolean looksLikeBindName(Path entry) {
        String name = entry.getFileName().toString();
        if (name.length() != BIND_NAME_LENGTH || name.charAt(0) != '.') {
            return false;
        }
        for (int i = 1; i < name.length(); i++) {
            if (BIND_NAME_LETTERS.indexOf(name.charAt(i)) < 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * Takes the {@code flock} on {@code socket}'s directory that servers hold while they check and remove a stale
     * socket and while they link theirs to its address; returns its descriptor. Held for those few calls only, by a
     * thread that waits for nothing else meanwhile. Without it two servers binding one address over a stale socket
     * could both serve: one checked the stale file, the other removed it and linked its own socket, and the first
     * removed that one by path and linked its own. A server that binds its address directly holds it from its stale
     * check until it listens ({@link TtrpcServer}).
     */
    static int lockDirectory(Path socket) throws IOException {
        Path dir = socket.toAbsolutePath().getParent();
        long deadline = System.nanoTime() + LOCK_WAIT.toNanos();
        try {
            // Not a blocking flock: a process of the same user that holds the lock for good (hostile, or stopped)
            // would hold this io thread for good too, and an interrupt does not end a wait in flock.
            int fd;
            while ((fd = tryLockDirectory(socket)) < 0) {
                if (System.nanoTime() - deadline > 0) {
                    throw directoryStayedLocked(socket);
                }
                Thread.sleep(1);
            }
            return fd;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted waiting for the lock on socket directory " + dir);
        }
    }

    /** {@link #lockDirectory} without waiting: the descriptor that holds the lock, or -1 while another holds it. */
    static int tryLockDirectory(Path socket) throws IOException {
        Path dir = socket.toAbsolutePath().getParent();
        int fd = LinuxCalls.open(dir, LinuxCalls.O_RDONLY | LinuxCalls.O_DIRECTORY | LinuxCalls.O_CLOEXEC
                | LinuxCalls.O_NOFOLLOW);
        try {
            if (LinuxCalls.flock(fd, LinuxCalls.LOCK_EX | LinuxCalls.LOCK_NB)) {
                return fd;
            }
        } catch (IOException | RuntimeException e) {
            LinuxCalls.close(fd);
            throw e;
        }
        LinuxCalls.close(fd);
        return -1;
    }

    /** How long a server waits for the lock on its socket's directory. */
    static Duration lockWait() {
        return LOCK_WAIT;
    }

    static IOException directoryStayedLocked(Path socket) {
        return new IOException("socket directory " + socket.toAbsolutePath().getParent()
                + " stayed locked by another process for " + LOCK_WAIT.toSeconds() + " s");
    }

    /**
     * A private name beside {@code socket} for a server to bind at before {@link #publish} links the socket to its
     * address: a dot and twelve random letters. When the directory's path leaves no room for that in a socket
     * address, {@code socket} itself: that server binds its address directly, and netty removes it by path as the
     * server closes (the one case where a stopping server can still remove a socket another bound since).
     */
    static Path bindName(Path socket) {
        Path absolute = socket.toAbsolutePath();
        int room = MAX_PATH_BYTES - absolute.getParent().toString().getBytes(StandardCharsets.UTF_8).length - 1;
        if (room < BIND_NAME_LENGTH) {
            return socket;
        }
        ThreadLocalRandom random = ThreadLocalRandom.current();
        while (true) {
            StringBuilder name = new StringBuilder(".");
            while (name.length() < BIND_NAME_LENGTH) {
                name.append(BIND_NAME_LETTERS.charAt(random.nextInt(BIND_NAME_LETTERS.length())));
            }
            Path bindName = absolute.resolveSibling(name.toString());
            if (!bindName.getFileName().equals(absolute.getFileName())) {
                return bindName;
            }
        }
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
        if (bindName.equals(socket)) {
            Files.setPosixFilePermissions(socket, SOCKET_MODE);
            return identity(socket);
        }
        try {
            Files.setPosixFilePermissions(bindName, SOCKET_MODE);
            Object identity = identity(bindName);
            int lock = lockDirectory(socket);
            try {
                Files.createLink(socket, bindName);
            } catch (FileAlreadyExistsException taken) {
                throw new AddressInUseException("cannot bind " + socket + ": another server bound it meanwhile");
            } finally {
                LinuxCalls.close(lock);
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
     * Removes {@code socket} if it is still the file {@link #publish} linked there, under the directory's lock. A
     * server must never remove another's socket: if its own was removed while it served and a second server bound
     * the same path (a new shim daemon after an operator's cleanup), removing by path alone would take the second's
     * address away when the first stopped. Returns whether it removed the file.
     */
    static boolean removeIfSame(Path socket, Object identity) throws IOException {
        if (!Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) {
            return false;
        }
        int lock = lockDirectory(socket);
        try {
            return removeIfSameLocked(socket, identity);
        } finally {
            LinuxCalls.close(lock);
        }
    }

    /** {@link #removeIfSame} by a caller that holds the directory's lock (a second flock would wait for the first). */
    private static boolean removeIfSameLocked(Path socket, Object identity) throws IOException {
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

    /** Whether a server listens on {@code socket} (a probe that never blocks, classified by errno). */
    static boolean isServed(Path socket) throws IOException {
        return LinuxCalls.probeUnix(socket) == LinuxCalls.UnixProbe.LISTENING;
    }

    /**
     * This process's effective user, as the principal {@code SO_PEERCRED} reports: looked up by its number, which
     * the JDK takes as a uid when no user has that name.
     */
    static UserPrincipal effectiveUser() throws IOException {
        return FileSystems.getDefault().getUserPrincipalLookupService()
                .lookupPrincipalByName(Integer.toString(effectiveUid()));
    }

    /** This process's effective uid: the second figure of {@code /proc/self/status}'s {@code Uid:} line. */
    private static int effectiveUid() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"), StandardCharsets.US_ASCII)) {
            if (line.startsWith("Uid:")) {
                return Integer.parseInt(line.substring(4).strip().split("\\s+")[1]);
            }
        }
        throw new IOException("no Uid line in /proc/self/status");
    }
}
