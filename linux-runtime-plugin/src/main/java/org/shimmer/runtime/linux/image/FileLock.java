package org.shimmer.runtime.linux.image;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.LinuxCalls.ErrnoException;

/**
 * A {@code flock(2)} on a file (exclusive, or shared by leases), taken on a descriptor opened for this acquisition
 * alone and released by closing it.
 *
 * <p>Invariant: one exclusive holder at a time among threads, plugin class loaders and processes alike (or any
 * number of shared ones, none exclusive). The JDK's
 * {@code FileLock} is an {@code fcntl} lock: it belongs to the process, so two class loaders of one JVM (a plugin
 * reloaded while the old one still imports) would both "hold" it. A flock belongs to the open file description,
 * and the kernel drops it when the holder dies, which is how a killed import is told from a running one.
 *
 * <p>Only a regular file is ever locked: the file is opened without following a symlink, without blocking and
 * without becoming a terminal, and checked with {@code fstat} before the flock. A device, FIFO or directory at
 * a lock's name (a hostile layer's "owner" entry once hung or failed every sweep) is nobody's lock.
 */
final class FileLock implements AutoCloseable {

    private static final int FLAGS = LinuxCalls.O_RDWR | LinuxCalls.O_CLOEXEC | LinuxCalls.O_NOFOLLOW
            | LinuxCalls.O_NONBLOCK | LinuxCalls.O_NOCTTY;

    private int fd;

    private FileLock(int fd) {
        this.fd = fd;
    }

    /** Waits for the lock on {@code file}, made (0600) if absent. */
    static FileLock acquire(Path file) throws IOException {
        return acquire(file, LinuxCalls.LOCK_EX);
    }

    /**
     * Waits for a shared lock on {@code file}, made (0600) if absent: held with other shared holders, excluding
     * only an exclusive one, so {@link #tryAcquire} fails while any holder has it.
     */
    static FileLock acquireShared(Path file) throws IOException {
        return acquire(file, LinuxCalls.LOCK_SH);
    }

    private static FileLock acquire(Path file, int operation) throws IOException {
        create(file);
        int fd = LinuxCalls.open(file, FLAGS);
        try {
            if (!LinuxCalls.fstat(fd).isRegularFile()) {
                throw new IOException("lock file " + file + " is not a regular file");
            }
            LinuxCalls.flock(fd, operation);
            return new FileLock(fd);
        } catch (IOException | RuntimeException e) {
            LinuxCalls.close(fd);
            throw e;
        }
    }

    /**
     * The lock on {@code file} if nobody holds it now, else null. An absent file, a symlink and anything not a
     * regular file are locked by nobody: no holder ever locks one.
     */
    static FileLock tryAcquire(Path file) throws IOException {
        int fd;
        try {
            fd = LinuxCalls.open(file, FLAGS);
        } catch (ErrnoException e) {
            if (e.errno() == LinuxCalls.ENOENT || e.errno() == LinuxCalls.ELOOP || e.errno() == LinuxCalls.ENXIO
                    || e.errno() == LinuxCalls.EISDIR) {
                return new FileLock(-1);
            }
            throw e;
        }
        try {
            if (!LinuxCalls.fstat(fd).isRegularFile()) {
                LinuxCalls.close(fd);
                return new FileLock(-1);
            }
            if (LinuxCalls.flock(fd, LinuxCalls.LOCK_EX | LinuxCalls.LOCK_NB)) {
                return new FileLock(fd);
            }
            LinuxCalls.close(fd);
            return null;
        } catch (IOException | RuntimeException e) {
            LinuxCalls.close(fd);
            throw e;
        }
    }

    private static void create(Path file) throws IOException {
        try {
            Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        } catch (FileAlreadyExistsException e) {
            // Made by an earlier holder: the lock is on the file, whoever made it.
        }
    }

    @Override
    public void close() {
        if (fd >= 0) {
            LinuxCalls.close(fd);
            fd = -1;
        }
    }
}
