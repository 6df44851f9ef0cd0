package org.shimmer.runtime.linux.layer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
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
     * @throws Refusal when a component is a symlink or not a directory, or is missing and not to be made
     */
    OwnedFd directory(List<String> components, boolean create) throws IOException, Refusal {
        if (last != null && components.equals(lastPath)) {
            return reopen(last, lastPath);
        }
        OwnedFd walked = walk(components, create);
        forgetLast();
        lastPath = List.copyOf(components);
        last = walked;
        return reopen(last, lastPath);
    }

    /** A descriptor of its own for the directory {@code dir} holds: the caller closes it. */
    private static OwnedFd reopen(OwnedFd dir, List<String> path) throws IOException {
        return OwnedFd.adopt(String.join("/", path), dir.use(fd -> LinuxCalls.openat(fd, SELF, DIRECTORY_FLAGS)));
    }

    private OwnedFd walk(List<String> components, boolean create) throws IOException, Refusal {
        OwnedFd current = reopen(root, List.of());
        try {
            for (int i = 0; i < components.size(); i++) {
                byte[] name = EntryPath.bytes(components.get(i));
                OwnedFd next = openChild(current, name, create, components.subList(0, i + 1));
                current.close();
                current = next;
            }
            return current;
        } catch (IOException | Refusal | RuntimeException e) {
            current.close();
            throw e;
        }
    }

    private static OwnedFd openChild(OwnedFd parent, byte[] name, boolean create, List<String> path)
            throws IOException, Refusal {
        try {
            return OwnedFd.adopt(String.join("/", path),
                    parent.use(fd -> LinuxCalls.openat(fd, name, DIRECTORY_FLAGS)));
        } catch (ErrnoException e) {
            if (e.errno() == LinuxCalls.ENOENT) {
                if (!create) {
                    throw new Refusal("\"" + String.join("/", path) + "\" is not in the layer");
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
                return OwnedFd.adopt(String.join("/", path),
                        parent.use(fd -> LinuxCalls.openat(fd, name, DIRECTORY_FLAGS)));
            }
            if (e.errno() == LinuxCalls.ELOOP || e.errno() == LinuxCalls.ENOTDIR) {
                FileStatus status = parent.use(fd -> LinuxCalls.lstatat(fd, name));
                throw new Refusal("\"" + String.join("/", path) + "\" is "
                        + (status != null && status.isSymlink() ? "a symlink, never followed" : "not a directory"));
            }
            throw e;
        }
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
     */
    void remove(OwnedFd dir, byte[] name) throws IOException {
        forgetLast();
        FileIdentity identity = dir.use(fd -> LinuxCalls.statx(fd, name, LinuxCalls.AT_SYMLINK_NOFOLLOW));
        if (identity.mountId() != mountId) {
            throw new IOException("refusing to remove across a mount point: " + LinuxCalls.display(name));
        }
        if (identity.directory()) {
            try (OwnedFd child = OwnedFd.adopt(LinuxCalls.display(name),
                    dir.use(fd -> LinuxCalls.openat(fd, name, DIRECTORY_FLAGS)))) {
                for (byte[] entry : child.use(LinuxCalls::directoryEntries)) {
                    remove(child, entry);
                }
            }
            dir.use(fd -> {
                LinuxCalls.unlinkat(fd, name, LinuxCalls.AT_REMOVEDIR);
                return null;
            });
        } else {
            dir.use(fd -> {
                LinuxCalls.unlinkat(fd, name, 0);
                return null;
            });
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
