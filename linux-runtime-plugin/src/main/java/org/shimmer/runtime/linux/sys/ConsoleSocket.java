package org.shimmer.runtime.linux.sys;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * runc's {@code --console-socket}: a unix socket we listen on, alone in a {@code 0700} directory we made, through
 * which runc hands over the master of the terminal it made for a process ({@code SCM_RIGHTS}).
 *
 * <p>Invariants: the master is taken only once runc has exited successfully, when runc's connection and its one
 * message are already queued on the socket, so taking it never waits (runc that died before sending can never hang
 * us); only runc's master is taken: a socket that more than one process connected to gives none; the socket and
 * its directory are removed once the master arrived or the launch failed, and only they: the directory is ours
 * alone (made with a fresh name), never one a user made; it is always under the parent given, however long its
 * path, so what a killed host left goes with its bundle.
 */
public final class ConsoleSocket implements AutoCloseable {

    private static final String NAME = "s";

    private final Path directory;
    private final Path path;
    private final Path address;
    private final OwnedFd listener;
    /** The directory, held open while {@link #address} names it through its descriptor; else null. */
    private final OwnedFd held;

    private ConsoleSocket(Path directory, Path path, Path address, OwnedFd listener, OwnedFd held) {
        this.directory = directory;
        this.path = path;
        this.address = address;
        this.listener = listener;
        this.held = held;
    }

    /**
     * Listens in a new directory under {@code parent}. When that socket's path would not fit in {@code sun_path}
     * (a deep work directory, a long id), the socket is still made there, bound and given to runc through a
     * descriptor of its directory ({@code /proc/<pid>/fd/<n>/s}): a socket made elsewhere, under the temporary
     * directory, was left there for good by a host killed while it waited, which no later host could find. Blocking.
     */
    public static ConsoleSocket listen(Path parent) throws IOException {
        Files.createDirectories(parent, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString(
                "rwx------")));
        Path directory = Files.createTempDirectory(parent, "console-", PosixFilePermissions.asFileAttribute(
                PosixFilePermissions.fromString("rwx------")));
        Path path = directory.resolve(NAME);
        OwnedFd held = null;
        try {
            Path bound = path;
            Path address = path;
            if (path.toString().getBytes(LinuxCalls.FILE_NAMES).length > LinuxCalls.UNIX_PATH_MAX) {
                held = OwnedFd.open(directory, LinuxCalls.O_PATH | LinuxCalls.O_DIRECTORY | LinuxCalls.O_NOFOLLOW
                        | LinuxCalls.O_CLOEXEC);
                // The number is ours until close(), which closes it only after the socket is gone.
                String number = Integer.toString(held.use(fd -> fd));
                bound = Path.of("/proc/self/fd", number, NAME);
                address = Path.of("/proc", Long.toString(ProcessHandle.current().pid()), "fd", number, NAME);
            }
            OwnedFd listener = OwnedFd.adopt("console socket " + path, LinuxCalls.listenUnix(bound));
            try {
                Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rw-------"));
            } catch (IOException | RuntimeException e) {
                listener.close();
                throw e;
            }
            return new ConsoleSocket(directory, path, address, listener, held);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(path);
            Files.deleteIfExists(directory);
            if (held != null) {
                held.close();
            }
            throw e;
        }
    }

    /** The socket's path for runc: where it is, or, when that is too long, the same through its directory's fd. */
    public Path path() {
        return address;
    }

    /**
     * The terminal master runc sent (non-blocking, close-on-exec, owned by the caller), taken after runc exited
     * successfully; an {@link IOException} when it sent none, or when another process connected too.
     */
    public OwnedFd take() throws IOException {
        int connection = listener.use(LinuxCalls::acceptNow);
        if (connection < 0) {
            throw new IOException("runc exited without connecting to the console socket " + path);
        }
        try {
            // runc connects once. A second connection is another process that reached the socket, before runc or
            // after it: which one is runc's cannot be told, and a master passed by anyone else would get the
            // process's input and show its output (runc's own went unread, and hung up the process).
            int other = listener.use(LinuxCalls::acceptNow);
            if (other >= 0) {
                LinuxCalls.close(other);
                throw new IOException("more than one process connected to the console socket " + path
                        + "; no terminal is taken from it");
            }
            int master = LinuxCalls.receiveFd(connection);
            if (master < 0) {
                throw new IOException("runc sent no terminal on the console socket " + path);
            }
            OwnedFd owned = OwnedFd.adopt("terminal master from " + path, master);
            try {
                owned.use(number -> {
                    LinuxCalls.setNonBlocking(number);
                    return null;
                });
            } catch (IOException | RuntimeException e) {
                owned.close();
                throw e;
            }
            return owned;
        } finally {
            LinuxCalls.close(connection);
        }
    }

    /** Stops listening (a connection still queued goes, with any descriptor in it) and removes the socket. */
    @Override
    public void close() throws IOException {
        listener.close();
        try {
            Files.deleteIfExists(path);
            Files.deleteIfExists(directory);
        } finally {
            if (held != null) {
                held.close();
            }
        }
    }

    @Override
    public String toString() {
        return path.toString();
    }
}
