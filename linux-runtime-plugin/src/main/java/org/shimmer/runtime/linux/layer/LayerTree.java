package org.shimmer.runtime.linux.layer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
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
 *
 * <p>A directory the layer has no entry for, made only as the parent of one, takes the mode, owner, xattrs and times
 * of that directory in the merged view of the lower layers, as containerd's {@code mkparent} does: made 0755, it
 * would hide them in the container (overlay shows the topmost layer's directory), a {@code /tmp} losing its
 * sticky bit and a home directory its owner. The lower layers are only read, walked the same way from descriptors
 * of their roots.
 */
final class LayerTree implements AutoCloseable {

    static final int DIRECTORY_FLAGS =
            LinuxCalls.O_RDONLY | LinuxCalls.O_DIRECTORY | LinuxCalls.O_NOFOLLOW | LinuxCalls.O_CLOEXEC;
    private static final byte[] SELF = {'.'};
    private static final byte[] PARENT = {'.', '.'};
    private static final byte[] EMPTY_PATH = {};
    private static final int IMPLICIT_DIRECTORY_MODE = 0755;
    private static final String OVERLAY_XATTRS = "trusted.overlay.";
    private static final byte[] OPAQUE_VALUE = {'y'};

    private final OwnedFd root;
    private final long mountId;
    /** The roots of the layers below, top first. */
    private final List<OwnedFd> lowers;
    private final Inherited inherited;
    private List<String> lastPath;
    private OwnedFd last;
    /**
     * The lower layers' views ({@link #lowerView}) of the levels of the path last looked up: {@code views.get(i)}
     * is the view of {@code viewPath}'s first {@code i + 1} components, null once dropped to keep the descriptors
     * held at most {@link #MAX_VIEW_DESCRIPTORS} (the shallowest go first); the top level's is {@code lowers}.
     */
    private final List<String> viewPath = new ArrayList<>();
    private final List<List<OwnedFd>> views = new ArrayList<>();
    private int viewDescriptors;
    private static final int MAX_VIEW_DESCRIPTORS = 256;

    /** Told of each directory made as a parent with a lower layer's attributes: its times are to be set last. */
    @FunctionalInterface
    interface Inherited {
        void directory(EntryPath path, LinuxCalls.FileAttributes attributes);
    }

    private LayerTree(OwnedFd root, long mountId, List<OwnedFd> lowers, Inherited inherited) {
        this.root = root;
        this.mountId = mountId;
        this.lowers = lowers;
        this.inherited = inherited;
    }

    /**
     * Opens {@code target}, which must be a directory and not a symlink, over the layer directories
     * {@code lowers} (top first; none for a base layer).
     */
    static LayerTree open(Path target, List<Path> lowers, Inherited inherited) throws IOException {
        List<OwnedFd> opened = new ArrayList<>();
        try {
            OwnedFd root = openDirectory(target);
            opened.add(root);
            long mountId = root.use(fd -> LinuxCalls.statx(fd, EMPTY_PATH, LinuxCalls.AT_EMPTY_PATH)).mountId();
            for (Path lower : lowers) {
                opened.add(openDirectory(lower));
            }
            return new LayerTree(root, mountId, List.copyOf(opened.subList(1, opened.size())), inherited);
        } catch (IOException | RuntimeException e) {
            opened.forEach(OwnedFd::close);
            throw e;
        }
    }

    private static OwnedFd openDirectory(Path dir) throws IOException {
        return OwnedFd.adopt(dir.toString(), LinuxCalls.openat(LinuxCalls.AT_FDCWD,
                dir.toString().getBytes(LinuxCalls.FILE_NAMES), DIRECTORY_FLAGS));
    }

    /**
     * A new descriptor of the directory {@code components} name below the root (the root itself for none).
     * Missing directories are made when {@code create} (with the lower layers' attributes, else {@code 0755} and
     * root's, as tar does for a parent it was not given), else refused as not in the layer.
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
    private OwnedFd walk(OwnedFd start, List<String> components, int from, boolean create)
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
    private OwnedFd openChild(OwnedFd parent, byte[] name, boolean create, List<String> path, int index)
            throws IOException, Refusal {
        String what = path.get(index);
        try {
            return OwnedFd.adopt(what, parent.use(fd -> LinuxCalls.openat(fd, name, DIRECTORY_FLAGS)));
        } catch (ErrnoException e) {
            if (e.errno() == LinuxCalls.ENOENT) {
                if (!create) {
                    throw new Refusal("\"" + prefix(path, index) + "\" is not in the layer");
                }
                boolean madeHere = parent.use(fd -> {
                    try {
                        LinuxCalls.mkdirat(fd, name, IMPLICIT_DIRECTORY_MODE);
                        return true;
                    } catch (ErrnoException exists) {
                        if (exists.errno() != LinuxCalls.EEXIST) {
                            throw exists;
                        }
                        return false;
                    }
                });
                OwnedFd made = OwnedFd.adopt(what, parent.use(fd -> LinuxCalls.openat(fd, name, DIRECTORY_FLAGS)));
                try {
                    if (madeHere) {
                        inherit(made, path, index);
                    }
                } catch (IOException | RuntimeException failed) {
                    made.close();
                    throw failed;
                }
                return made;
            }
            if (e.errno() == LinuxCalls.ELOOP || e.errno() == LinuxCalls.ENOTDIR) {
                FileStatus status = parent.use(fd -> LinuxCalls.lstatat(fd, name));
                throw new Refusal("\"" + prefix(path, index) + "\" is "
                        + (status != null && status.isSymlink() ? "a symlink, never followed" : "not a directory"));
            }
            throw e;
        }
    }

    /**
     * Gives {@code made}, the directory just made for component {@code index} of {@code path}, the attributes the
     * lower layers show for it; nothing when none shows a directory there.
     */
    private void inherit(OwnedFd made, List<String> path, int index) throws IOException {
        List<OwnedFd> merged = lowerView(path, index);
        if (merged.isEmpty()) {
            return;
        }
        OwnedFd lower = merged.getFirst();
        LinuxCalls.FileAttributes attributes = lower.use(LinuxCalls::fattributes);
        made.use(fd -> {
            // Owner first: a chown clears the set-id bits the mode may carry.
            LinuxCalls.fchown(fd, attributes.uid(), attributes.gid());
            LinuxCalls.fchmod(fd, attributes.mode());
            for (String xattr : lower.use(LinuxCalls::flistxattr)) {
                if (xattr.startsWith(OVERLAY_XATTRS)) {
                    // Overlay's own marks stay the lower's: an opaque copy would hide the layers below.
                    continue;
                }
                byte[] value = lower.use(from -> LinuxCalls.fgetxattr(from, xattr));
                if (value != null) {
                    LinuxCalls.fsetxattr(fd, xattr, value);
                }
            }
            return null;
        });
        inherited.directory(new EntryPath(List.copyOf(path.subList(0, index + 1))), attributes);
    }

    /**
     * The directories that make up the merged view, in the lower layers, of what components {@code 0..index} of
     * {@code path} name, top first: the layers that have a directory there, down to and including the first opaque
     * one; empty when that view has no directory there (no layer has one, or a layer above has a non-directory, a
     * whiteout, file or symlink, on the way). The caller owns none of them. Nothing is followed: every step is
     * {@code O_NOFOLLOW}.
     *
     * <p>Overlay's own lookup, one level at a time from the view of the level above; the views of the levels of
     * the last path are kept, so a parent made below or beside the last one costs L steps over L lowers. Each
     * lookup from the roots cost a walk of every lower layer per level (a crafted layer of many deep parents took
     * minutes), and an opaque directory above the level looked at did not hide the layers below it.
     */
    private List<OwnedFd> lowerView(List<String> path, int index) throws IOException {
        int common = 0;
        while (common < viewPath.size() && common < index && viewPath.get(common).equals(path.get(common))) {
            common++;
        }
        dropViewsFrom(common);
        int start = common;
        while (start > 0 && views.get(start - 1) == null) {
            start--;
        }
        for (int i = start; i <= index; i++) {
            List<OwnedFd> parent = i == 0 ? lowers : views.get(i - 1);
            List<OwnedFd> child = childView(parent, path.get(i));
            if (i < views.size()) {
                views.set(i, child);
            } else {
                views.add(child);
                viewPath.add(path.get(i));
            }
            viewDescriptors += child.size();
        }
        // The shallowest go first: a parent beside the last one made needs the level above it, deep down.
        for (int i = 0; i < index && viewDescriptors > MAX_VIEW_DESCRIPTORS; i++) {
            if (views.get(i) != null) {
                viewDescriptors -= views.get(i).size();
                views.get(i).forEach(OwnedFd::close);
                views.set(i, null);
            }
        }
        return views.get(index);
    }

    /** Closes and forgets the views of the levels from {@code level} on: they are of another path. */
    private void dropViewsFrom(int level) {
        while (views.size() > level) {
            List<OwnedFd> dropped = views.removeLast();
            viewPath.removeLast();
            if (dropped != null) {
                viewDescriptors -= dropped.size();
                dropped.forEach(OwnedFd::close);
            }
        }
    }

    /*
     * A lower layer's root is the view of the top level for all of them: overlay never looks the root up, so an
     * opaque mark on a layer's root hides nothing below it (checked on a mount: the kernel shows the lower layers).
     */

    /** The view of {@code name} in the directory whose view is {@code parents}. */
    private static List<OwnedFd> childView(List<OwnedFd> parents, String name) throws IOException {
        byte[] bytes = EntryPath.bytes(name);
        List<OwnedFd> children = new ArrayList<>();
        try {
            for (OwnedFd dir : parents) {
                FileStatus status = status(dir, bytes);
                if (status == null) {
                    continue;
                }
                if (!status.isDirectory()) {
                    break;
                }
                OwnedFd child = OwnedFd.adopt(name, dir.use(fd -> LinuxCalls.openat(fd, bytes, DIRECTORY_FLAGS)));
                children.add(child);
                if (isOpaque(child)) {
                    break;
                }
            }
            return children;
        } catch (IOException | RuntimeException e) {
            children.forEach(OwnedFd::close);
            throw e;
        }
    }

    private static boolean isOpaque(OwnedFd dir) throws IOException {
        return Arrays.equals(OPAQUE_VALUE, dir.use(fd -> LinuxCalls.fgetxattr(fd, LayerUnpacker.OPAQUE_XATTR)));
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
        dropViewsFrom(0);
        root.close();
        lowers.forEach(OwnedFd::close);
    }
}
