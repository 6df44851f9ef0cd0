package org.shimmer.runtime.linux.bundle;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.LinuxCalls.ErrnoException;
import org.shimmer.runtime.linux.sys.LinuxCalls.FileIdentity;

/**
 * Removal of directory trees that never leaves the mount it starts on and never follows a symbolic link.
 *
 * <p>Invariant: nothing on another mount is read, written or removed. The bug that forced it: a bind mount of
 * the user's directory on the same file system has the same {@code st_dev}, so a walk comparing devices entered
 * it and wiped the user's files. The walk compares mount ids ({@code statx} {@code STATX_MNT_ID}) instead, and
 * works through a descriptor of each directory ({@code openat} with {@code O_NOFOLLOW}, {@code unlinkat}): a
 * mount placed on a path after it was checked cannot redirect a removal, and a directory that turns out to be a
 * mount stops the walk before anything below it is touched.
 */
public final class DirectoryTrees {

    private static final int DIRECTORY_FLAGS =
            LinuxCalls.O_RDONLY | LinuxCalls.O_DIRECTORY | LinuxCalls.O_NOFOLLOW | LinuxCalls.O_CLOEXEC;
    /**
     * The parent of the tree is the directory create made the tree in, found by path as create found it, so a
     * symlink there (a namespace directory moved to another disk) is followed; with {@code O_NOFOLLOW} a delete
     * renamed the tree out of sight and then failed with {@code ELOOP}, on every later delete too.
     */
    private static final int PARENT_FLAGS = LinuxCalls.O_RDONLY | LinuxCalls.O_DIRECTORY | LinuxCalls.O_CLOEXEC;
    private static final byte[] EMPTY_PATH = {};

    /** Sees each directory after it was opened and checked, before its entries are read; tests mount through it. */
    @FunctionalInterface
    interface WalkObserver {
        WalkObserver NONE = dir -> {};

        void entering(Path dir) throws IOException;
    }

    /** The walk met another mount and stopped; nothing at or below {@link #mountPoint()} was touched. */
    static final class MountCrossingException extends IOException {
        private final Path mountPoint;

        MountCrossingException(Path mountPoint) {
            super("refusing to delete across a mount point: " + mountPoint);
            this.mountPoint = mountPoint;
        }

        Path mountPoint() {
            return mountPoint;
        }
    }

    private DirectoryTrees() {}

    /** {@link #deleteRecursively(Path, WalkObserver)} watched by nobody. */
    public static void deleteRecursively(Path root) throws IOException {
        deleteRecursively(root, WalkObserver.NONE);
    }

    /**
     * Removes {@code root} and everything below it. An absent tree, or entries that vanish meanwhile, are fine; a
     * symbolic link at or below {@code root} is removed, never followed (only the path to its parent is resolved).
     *
     * @throws MountCrossingException when {@code root} or anything below it is on another mount than
     *     {@code root}'s parent directory
     * @throws IOException the first entry that could not be removed, naming its path
     */
    static void deleteRecursively(Path root, WalkObserver observer) throws IOException {
        deleteRecursively(root, observer, () -> false);
    }

    /**
     * {@link #deleteRecursively(Path)} that asks {@code stopped} before each entry and, once it says so, returns
     * false and leaves the rest of the tree in place: a tree may hold hundreds of thousands of files, and its delete
     * must not outlive the plugin that began it. Returns true when the tree is gone.
     */
    public static boolean deleteRecursively(Path root, BooleanSupplier stopped) throws IOException {
        return deleteRecursively(root, WalkObserver.NONE, stopped);
    }

    /** {@link #deleteRecursively(Path, BooleanSupplier)} watched by {@code observer}. */
    static boolean deleteRecursively(Path root, WalkObserver observer, BooleanSupplier stopped)
            throws IOException {
        return deleteRecursively(root, observer, stopped, () -> false);
    }

    /**
     * {@link #deleteRecursively(Path, WalkObserver, BooleanSupplier)} that also asks {@code spent} before each
     * removal (a file, or a directory once emptied), never before going down into a directory: a budget of
     * removals. Asked before each entry, a budget smaller than a tree's depth was spent going down it, and nothing
     * was ever removed.
     */
    static boolean deleteRecursively(Path root, WalkObserver observer, BooleanSupplier stopped,
            BooleanSupplier spent) throws IOException {
        Path parentPath = root.toAbsolutePath().getParent();
        byte[] name = bytes(root.getFileName());
        try (Directory parent = Directory.open(LinuxCalls.AT_FDCWD, bytes(parentPath), PARENT_FLAGS,
                () -> parentPath)) {
            if (parent == null) {
                return true;
            }
            long mountId = parent.identity().mountId();
            FileIdentity identity = identity(parent, name, () -> root);
            if (identity == null) {
                return true;
            }
            if (identity.mountId() != mountId) {
                throw new MountCrossingException(root);
            }
            if (identity.directory()) {
                return removeDirectory(parent, name, root, mountId, observer, stopped, spent);
            }
            if (spent.getAsBoolean()) {
                return false;
            }
            unlink(parent, name, 0, () -> root);
            return true;
        }
    }

    /**
     * Removes the directory {@code name} of {@code parent} depth first. The levels being walked are an explicit
     * stack, not recursion, and paths are built only for a message or an observer: a container can make its
     * rootfs as deep as it likes, and that must end in a typed error at worst (descriptors run out:
     * {@code EMFILE}), never in a {@link StackOverflowError} or in paths whose total length grows with the square
     * of the depth. Returns false when {@code stopped} ended it early.
     */
    private static boolean removeDirectory(Directory parent, byte[] name, Path root, long mountId,
            WalkObserver observer, BooleanSupplier stopped, BooleanSupplier spent) throws IOException {
        Deque<Level> levels = new ArrayDeque<>();
        try {
            Level top = enter(parent, null, name, root, mountId, observer);
            if (top != null) {
                levels.push(top);
            }
            while (!levels.isEmpty()) {
                if (stopped.getAsBoolean()) {
                    return false;
                }
                Level level = levels.peek();
                if (!level.entries().hasNext()) {
                    if (spent.getAsBoolean()) {
                        return false;
                    }
                    levels.pop().dir().close();
                    Directory above = levels.isEmpty() ? parent : levels.peek().dir();
                    unlink(above, level.name(), LinuxCalls.AT_REMOVEDIR, () -> level.path(root));
                    continue;
                }
                byte[] entry = level.entries().next();
                Supplier<Path> child = () -> level.path(root).resolve(LinuxCalls.display(entry));
                FileIdentity identity = identity(level.dir(), entry, child);
                if (identity == null) {
                    continue;
                }
                if (identity.mountId() != mountId) {
                    throw new MountCrossingException(child.get());
                }
                if (identity.directory()) {
                    Level below = enter(level.dir(), level, entry, root, mountId, observer);
                    if (below != null) {
                        levels.push(below);
                    }
                } else if (spent.getAsBoolean()) {
                    return false;
                } else {
                    unlink(level.dir(), entry, 0, child);
                }
            }
        } finally {
            levels.forEach(level -> level.dir().close());
        }
        return true;
    }

    /** Opens a directory below {@code above} (null for the root) and lists it; null when it vanished meanwhile. */
    private static Level enter(Directory parent, Level above, byte[] name, Path root, long mountId,
            WalkObserver observer) throws IOException {
        Supplier<Path> path = () -> above == null ? root : above.path(root).resolve(LinuxCalls.display(name));
        Directory dir = Directory.open(parent.fd(), name, DIRECTORY_FLAGS, path);
        if (dir == null) {
            return null;
        }
        try {
            // openat crosses into whatever is mounted on the name now, so this is the check that counts.
            if (dir.identity().mountId() != mountId) {
                throw new MountCrossingException(path.get());
            }
            if (observer != WalkObserver.NONE) {
                observer.entering(path.get());
            }
            return new Level(above, name, dir, entries(dir, path).iterator());
        } catch (IOException | RuntimeException e) {
            dir.close();
            throw e;
        }
    }

    /**
     * One directory being walked: the level above it (null for the root), its name there, its descriptor, and
     * the entries not yet handled.
     */
    private record Level(Level above, byte[] name, Directory dir, Iterator<byte[]> entries) {

        /** Its path under {@code root}, for a message; built from the names up the stack, without recursion. */
        Path path(Path root) {
            Deque<String> names = new ArrayDeque<>();
            for (Level level = this; level.above() != null; level = level.above()) {
                names.push(LinuxCalls.display(level.name()));
            }
            Path path = root;
            for (String name : names) {
                path = path.resolve(name);
            }
            return path;
        }
    }

    private static FileIdentity identity(Directory dir, byte[] name, Supplier<Path> path) throws IOException {
        try {
            return LinuxCalls.statx(dir.fd(), name, LinuxCalls.AT_SYMLINK_NOFOLLOW);
        } catch (ErrnoException e) {
            if (e.errno() == LinuxCalls.ENOENT) {
                return null;
            }
            throw failure(path, e);
        }
    }

    /**
     * The names in {@code dir}; none when it was removed since it was opened, for which {@code getdents64} fails
     * with {@code ENOENT}: a second delete of the same id racing through the tree failed on it.
     */
    private static List<byte[]> entries(Directory dir, Supplier<Path> path) throws IOException {
        try {
            return LinuxCalls.directoryEntries(dir.fd());
        } catch (ErrnoException e) {
            if (e.errno() == LinuxCalls.ENOENT) {
                return List.of();
            }
            throw failure(path, e);
        } catch (IOException e) {
            throw failure(path, e);
        }
    }

    private static void unlink(Directory dir, byte[] name, int flags, Supplier<Path> path) throws IOException {
        try {
            LinuxCalls.unlinkat(dir.fd(), name, flags);
        } catch (ErrnoException e) {
            if (e.errno() != LinuxCalls.ENOENT) {
                throw failure(path, e);
            }
        }
    }

    private static byte[] bytes(Path path) {
        return path.toString().getBytes(LinuxCalls.FILE_NAMES);
    }

    private static IOException failure(Supplier<Path> path, IOException e) {
        return new IOException(path.get() + ": " + e.getMessage(), e);
    }

    /** One open directory descriptor, owned here alone: closed once, never used after. */
    private static final class Directory implements AutoCloseable {
        private final FileIdentity identity;
        private int fd;

        private Directory(int fd, FileIdentity identity) {
            this.fd = fd;
            this.identity = identity;
        }

        /** Opens {@code name} relative to {@code dirfd} with {@code flags}; null when absent. */
        static Directory open(int dirfd, byte[] name, int flags, Supplier<Path> path) throws IOException {
            int fd;
            try {
                fd = LinuxCalls.openat(dirfd, name, flags);
            } catch (ErrnoException e) {
                if (e.errno() == LinuxCalls.ENOENT) {
                    return null;
                }
                throw failure(path, e);
            }
            try {
                return new Directory(fd, LinuxCalls.statx(fd, EMPTY_PATH, LinuxCalls.AT_EMPTY_PATH));
            } catch (IOException e) {
                LinuxCalls.close(fd);
                throw failure(path, e);
            } catch (RuntimeException e) {
                LinuxCalls.close(fd);
                throw e;
            }
        }

        int fd() {
            if (fd < 0) {
                throw new IllegalStateException("directory descriptor used after close");
            }
            return fd;
        }

        FileIdentity identity() {
            return identity;
        }

        @Override
        public void close() {
            if (fd >= 0) {
                LinuxCalls.close(fd);
                fd = -1;
            }
        }
    }
}
