package org.shimmer.runtime.linux.layer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Queue;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.LinuxCalls.ErrnoException;
import org.shimmer.runtime.linux.sys.LinuxCalls.FileIdentity;
import org.shimmer.runtime.linux.sys.LinuxCalls.FileStatus;
import org.shimmer.runtime.linux.sys.OwnedFd;

/**
 * A layer directory being unpacked, reached only through descriptors: the walk from its root to an entry's
 * directory opens each component with {@code O_NOFOLLOW | O_DIRECTORY}, so a symlink anywhere on the way (one an
 * earlier entry of the same layer made, a chain of them, one to {@code /}) stops the walk instead of being
 * followed, and nothing is ever made outside the root.
 *
 * <p>Invariant: only the unpacker writes below the root while it runs, so a component checked by opening it
 * stays what it was for as long as its descriptor is used. The last directory walked to is kept open for the next
 * entry (a tar lists a directory's files together) until anything that may be a directory is removed.
 */
final class LayerTree implements AutoCloseable {

    static final int DIRECTORY_FLAGS =
            LinuxCalls.O_RDONLY | LinuxCalls.O_DIRECTORY | LinuxCalls.O_NOFOLLOW | LinuxCalls.O_CLOEXEC;
    private static final byte[] SELF = {'.'};
    private static final byte[] PARENT = {'.', '.'};
    private static final byte[] EMPTY_PATH = {};
    private static final int IMPLICIT_DIRECTORY_MODE = 0755;

    private final OwnedFd root;
    private final long mountId;
    private List<String> lastPath;
    private OwnedFd last;

    private LayerTree(OwnedFd root, long mountId) {
        this.root = root;
        this.mountId = mountId;
    }

    /** Opens {@code target}, which must be a directory and not a symlink. */
    static LayerTree open(Path target) throws IOException {
        OwnedFd root = OwnedFd.adopt(target.toString(),
                LinuxCalls.openat(LinuxCalls.AT_FDCWD, target.toString().getBytes(LinuxCalls.FILE_NAMES),
                        DIRECTORY_FLAGS));
        try {
            long mountId = root.use(fd -> LinuxCalls.statx(fd, EMPTY_PATH, LinuxCalls.AT_EMPTY_PATH)).mountId();
            return new LayerTree(root, mountId);
        } catch (IOException | RuntimeException e) {
            root.close();
            throw e;
        }
    }

    /**
     * A new descriptor of the directory {@code components} name below the root (the root itself for none).
     * Missing directories are made ({@code 0755}, as tar does for a parent it was not given) when {@code create},
     * else refused as not in the layer.
     *
     * <p>The walk starts from the last directory walked to when that is shorter than from the root: up through
     * {@code ..} (safe: that directory was reached from the root, and nothing but the unpacker moves anything
     * here) to the part both paths share, then down. Names are built only for an error. A layer of nested
     * directories, one an entry, cost the cube of its depth when every walk started at the root and joined every
     * prefix into a name; their times, set deepest first, walk one level up each.
     *
     * @throws Refusal when a component is a symlink or not a directory, or is missing and not to be made
     */
    OwnedFd directory(List<String> components, boolean create) throws IOException, Refusal {
        if (last != null && components.equals(lastPath)) {
            return reopen(last);
        }
        OwnedFd walked;
        int shared = last == null ? 0 : sharedPrefix(components, lastPath);
        int up = last == null ? 0 : lastPath.size() - shared;
        if (last != null && up < shared) {
            OwnedFd start = reopen(last);
            try {
                for (int i = 0; i < up; i++) {
                    OwnedFd parent = OwnedFd.adopt("layer directory",
                            start.use(fd -> LinuxCalls.openat(fd, PARENT, DIRECTORY_FLAGS)));
                    start.close();
                    start = parent;
                }
                walked = walk(start, components, shared, create);
            } finally {
                start.close();
            }
        } else {
            walked = walk(root, components, 0, create);
        }
        forgetLast();
        lastPath = List.copyOf(components);
        last = walked;
        return reopen(last);
    }

    private static int sharedPrefix(List<String> a, List<String> b) {
        int n = Math.min(a.size(), b.size());
        int i = 0;
        while (i < n && a.get(i).equals(b.get(i))) {
            i++;
        }
        return i;
    }

    /** A descriptor of its own for the directory {@code dir} holds: the caller closes it. */
    private static OwnedFd reopen(OwnedFd dir) throws IOException {
        return OwnedFd.adopt("layer directory", dir.use(fd -> LinuxCalls.openat(fd, SELF, DIRECTORY_FLAGS)));
    }

    /** Walks {@code components} from index {@code from} on, starting at {@code start}, the directory before it. */
    private static OwnedFd walk(OwnedFd start, List<String> components, int from, boolean create)
            throws IOException, Refusal {
        OwnedFd current = reopen(start);
        try {
            for (int i = from; i < components.size(); i++) {
                byte[] name = EntryPath.bytes(components.get(i));
                OwnedFd next = openChild(current, name, create, components, i);
                current.close();
                current = next;
            }
            return current;
        } catch (IOException | Refusal | RuntimeException e) {
            current.close();
            throw e;
        }
    }

    /** Opens component {@code index} of {@code path} in {@code parent}; the path's name is built only to refuse. */
    private static OwnedFd openChild(OwnedFd parent, byte[] name, boolean create, List<String> path, int index)
            throws IOException, Refusal {
        String what = path.get(index);
        try {
            return OwnedFd.adopt(what, parent.use(fd -> LinuxCalls.openat(fd, name, DIRECTORY_FLAGS)));
        } catch (ErrnoException e) {
            if (e.errno() == LinuxCalls.ENOENT) {
                if (!create) {
                    throw new Refusal("\"" + prefix(path, index) + "\" is not in the layer");
                }
                parent.use(fd -> {
                    try {
                        LinuxCalls.mkdirat(fd, name, IMPLICIT_DIRECTORY_MODE);
                    } catch (ErrnoException exists) {
                        if (exists.errno() != LinuxCalls.EEXIST) {
                            throw exists;
                        }
                    }
                    return null;
                });
                return OwnedFd.adopt(what, parent.use(fd -> LinuxCalls.openat(fd, name, DIRECTORY_FLAGS)));
            }
            if (e.errno() == LinuxCalls.ELOOP || e.errno() == LinuxCalls.ENOTDIR) {
                FileStatus status = parent.use(fd -> LinuxCalls.lstatat(fd, name));
                throw new Refusal("\"" + prefix(path, index) + "\" is "
                        + (status != null && status.isSymlink() ? "a symlink, never followed" : "not a directory"));
            }
            throw e;
        }
    }

    private static String prefix(List<String> path, int index) {
        return String.join("/", path.subList(0, index + 1));
    }

    /** The root, for the metadata of the layer's {@code ./} entry. */
    OwnedFd root() {
        return root;
    }

    /** What {@code name} in {@code dir} is, not followed; null when absent. */
    static FileStatus status(OwnedFd dir, byte[] name) throws IOException {
        return dir.use(fd -> LinuxCalls.lstatat(fd, name));
    }

    /**
     * Removes {@code name} from {@code dir}, a whole directory tree included, never following a symlink and never
     * entering another mount (a layer being unpacked has none: finding one means something else writes here).
     *
     * <p>The levels being walked are an explicit stack, not recursion: replacing a directory a few thousand levels
     * deep overflowed the thread's stack. Entry names are bounded by {@code PATH_MAX}, so the depth, and the
     * descriptors held (one a level), are too.
     */
    void remove(OwnedFd dir, byte[] name) throws IOException {
        forgetLast();
        if (!isDirectory(dir, name)) {
            unlink(dir, name, 0);
            return;
        }
        Deque<Level> levels = new ArrayDeque<>();
        try {
            levels.push(Level.enter(dir, name));
            while (!levels.isEmpty()) {
                Level level = levels.peek();
                byte[] entry = level.entries.poll();
                if (entry == null) {
                    levels.pop().fd.close();
                    OwnedFd parent = levels.isEmpty() ? dir : levels.peek().fd;
                    unlink(parent, level.name, LinuxCalls.AT_REMOVEDIR);
                } else if (isDirectory(level.fd, entry)) {
                    levels.push(Level.enter(level.fd, entry));
                } else {
                    unlink(level.fd, entry, 0);
                }
            }
        } finally {
            for (Level level : levels) {
                level.fd.close();
            }
        }
    }

    /** Whether {@code name} in {@code dir} is a directory (not followed); another mount is refused. */
    private boolean isDirectory(OwnedFd dir, byte[] name) throws IOException {
        FileIdentity identity = dir.use(fd -> LinuxCalls.statx(fd, name, LinuxCalls.AT_SYMLINK_NOFOLLOW));
        if (identity.mountId() != mountId) {
            throw new IOException("refusing to remove across a mount point: " + LinuxCalls.display(name));
        }
        return identity.directory();
    }

    private static void unlink(OwnedFd dir, byte[] name, int flags) throws IOException {
        dir.use(fd -> {
            LinuxCalls.unlinkat(fd, name, flags);
            return null;
        });
    }

    /** One directory being emptied: its name in the level above, its descriptor, the entries not yet removed. */
    private record Level(byte[] name, OwnedFd fd, Queue<byte[]> entries) {

        static Level enter(OwnedFd parent, byte[] name) throws IOException {
            OwnedFd fd = OwnedFd.adopt(LinuxCalls.display(name),
                    parent.use(p -> LinuxCalls.openat(p, name, DIRECTORY_FLAGS)));
            try {
                return new Level(name, fd, new ArrayDeque<>(fd.use(LinuxCalls::directoryEntries)));
            } catch (IOException | RuntimeException e) {
                fd.close();
                throw e;
            }
        }
    }

    private void forgetLast() {
        if (last != null) {
            last.close();
            last = null;
            lastPath = null;
        }
    }

    @Override
    public void close() {
        forgetLast();
        root.close();
    }
}
