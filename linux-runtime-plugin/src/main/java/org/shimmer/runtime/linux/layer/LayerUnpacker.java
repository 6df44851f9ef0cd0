package org.shimmer.runtime.linux.layer;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Objects;
import java.util.TreeMap;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.shimmer.runtime.image.InvalidImageException;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.LinuxCalls.ErrnoException;
import org.shimmer.runtime.linux.sys.LinuxCalls.FileStatus;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Unpacks one image layer (an uncompressed tar stream) into its own directory, exactly and safely, in the form
 * overlayfs reads as a lower layer: containerd's {@code archive/tar.go} with its overlay whiteout conversion.
 *
 * <ul>
 *   <li>Names: a leading {@code ./} is dropped; absolute names, {@code ..} segments and NUL bytes are refused.
 *       The {@code ./} entry's metadata goes onto the layer directory itself.</li>
 *   <li>Nothing is written through a symlink: every parent is opened with {@code O_NOFOLLOW} from a descriptor of
 *       the layer directory ({@link LayerTree}); every file is made with {@code *at} calls that do not follow its
 *       last component.</li>
 *   <li>A missing parent is made with the mode, owner, xattrs and times the lower layers show for it (containerd's
 *       {@code mkparent}), else {@code 0755} and root's.</li>
 *   <li>A later entry replaces an earlier one at the same path, as tar does: a directory over a directory only
 *       updates its metadata, anything else removes what was there first (a directory with its tree).</li>
 *   <li>Whiteouts: {@code .wh.NAME} becomes overlay's whiteout, a character device 0/0 named NAME;
 *       {@code .wh..wh..opq} marks its directory opaque ({@code trusted.overlay.opaque=y}); other
 *       {@code .wh..wh.*} names are AUFS bookkeeping, skipped.</li>
 *   <li>Hard links must point at a non-directory this layer already holds.</li>
 *   <li>Owner, then mode (a {@code chown} clears set-id bits), then xattrs, then times; a directory's times are
 *       set last, deepest first, since every file made in it changes them.</li>
 * </ul>
 *
 * Hostile or invalid entries fail with {@link InvalidImageException} ("layer L: entry "N": reason"), I/O with an
 * {@link IOException} naming the layer and entry whose cause is the failed call (the caller maps {@code ENOSPC}).
 * Whatever was unpacked before a failure stays: removing the layer directory is the caller's job.
 */
public final class LayerUnpacker {

    private static final Logger log = LoggerFactory.getLogger(LayerUnpacker.class);

    static final String WHITEOUT_PREFIX = ".wh.";
    static final String OPAQUE = ".wh..wh..opq";
    static final String OPAQUE_XATTR = "trusted.overlay.opaque";
    private static final byte[] SELF = {'.'};
    private static final int COPY_BUFFER = 128 * 1024;
    private static final int CREATE_FLAGS = LinuxCalls.O_WRONLY | LinuxCalls.O_CREAT | LinuxCalls.O_EXCL
            | LinuxCalls.O_NOFOLLOW | LinuxCalls.O_CLOEXEC;

    private final String layer;
    private final LayerTree tree;
    private final XattrTarInputStream tar;
    private final SourceEnd source;
    private final long usable;
    private final byte[] buffer = new byte[COPY_BUFFER];
    private final MemorySegment nativeBuffer;
    private final MemorySegment callState;
    /**
     * Directories' times, by path, to set once everything is in them. Sorted, so a replaced directory's subtree is
     * one range: scanned whole per replaced directory, a layer of many replacing entries cost the square of them.
     */
    private final NavigableMap<EntryPath, EntryMetadata> directoryTimes;
    /** The whiteouts this layer made and that are still there: only those may be whited out again. */
    private final NavigableMap<EntryPath, Boolean> whiteouts = new TreeMap<>(EntryPath.TREE_ORDER);
    /**
     * The regular files this layer made and still holds, by each of their names: a file replaced or removed later
     * in the layer takes its bytes back, once its last name is gone (counting it again had an image's size, and
     * the free-space check before an import, counting a file replaced within one layer twice).
     */
    // Sorted as a tree: a replaced directory's files are one range (a scan of every file for each replaced directory
    // cost files × directories).
    private final NavigableMap<EntryPath, FileBytes> files = new TreeMap<>(EntryPath.TREE_ORDER);
    private long bytes;
    private long entries;

    private LayerUnpacker(String layer, LayerTree tree, NavigableMap<EntryPath, EntryMetadata> directoryTimes,
            SourceEnd source, long usable, Arena arena) {
        this.layer = layer;
        this.tree = tree;
        this.directoryTimes = directoryTimes;
        this.source = source;
        this.tar = new XattrTarInputStream(source);
        this.usable = usable;
        this.nativeBuffer = arena.allocate(COPY_BUFFER);
        this.callState = LinuxCalls.allocateCallState(arena);
    }

    /**
     * Unpacks the tar stream {@code tar} into {@code target}, an existing empty directory made for this layer, and
     * reads {@code tar} to its very end (the caller digests it); {@code tar} is not closed. Blocking.
     *
     * @param layer names the layer in errors, e.g. its diff id
     * @throws InvalidImageException for an entry that is hostile or that a layer cannot hold
     * @throws IOException when reading the stream or writing below {@code target} fails
     */
    public static LayerContents unpack(InputStream tar, Path target, String layer) throws IOException {
        return unpack(tar, target, layer, List.of());
    }

    /**
     * {@link #unpack(InputStream, Path, String)} of a layer over {@code lowers}, the unpacked directories of the
     * layers below it, top first, only read: a directory this layer makes only as a parent of an entry takes the
     * mode, owner, xattrs and times the lowers show for it (see {@link LayerTree}).
     */
    public static LayerContents unpack(InputStream tar, Path target, String layer, List<Path> lowers)
            throws IOException {
        Objects.requireNonNull(tar, "tar");
        Objects.requireNonNull(target, "target");
        Objects.requireNonNull(layer, "layer");
        Objects.requireNonNull(lowers, "lowers");
        long usable = Files.getFileStore(target).getUsableSpace();
        NavigableMap<EntryPath, EntryMetadata> directoryTimes = new TreeMap<>(EntryPath.TREE_ORDER);
        LayerTree.Inherited inherited = (path, lower) -> directoryTimes.put(path, new EntryMetadata(lower.uid(),
                lower.gid(), lower.mode(), lower.atimeNanos(), lower.mtimeNanos(), Map.of()));
        try (LayerTree tree = LayerTree.open(target, lowers, inherited); Arena arena = Arena.ofConfined()) {
            LayerUnpacker unpacker = new LayerUnpacker(layer, tree, directoryTimes, new SourceEnd(tar), usable,
                    arena);
            unpacker.unpackEntries();
            tar.transferTo(OutputStream.nullOutputStream());
            unpacker.setDirectoryTimes();
            return new LayerContents(unpacker.bytes, unpacker.entries);
        }
    }

    private void unpackEntries() throws IOException {
        String previous = null;
        while (true) {
            TarArchiveEntry entry;
            try {
                entry = tar.getNextEntry();
            } catch (XattrTarInputStream.HeaderRefusal refusal) {
                throw new InvalidImageException(
                        "layer " + layer + ": entry \"" + refusal.entry() + "\": " + refusal.getMessage());
            } catch (IOException e) {
                String where = previous == null ? "the first entry" : "the entry after \"" + previous + "\"";
                // The stream read fine: the tar reader refused what it read (a PAX time of 20 digits, NaN).
                if (e.getCause() instanceof IllegalArgumentException || !source.failed) {
                    throw new InvalidImageException(
                            "layer " + layer + ": malformed tar header of " + where + ": " + e.getMessage(), e);
                }
                throw new IOException("layer " + layer + ": reading " + where + ": " + e.getMessage(), e);
            }
            if (entry == null) {
                return;
            }
            entries++;
            previous = entry.getName();
            try {
                unpackEntry(entry);
            } catch (Refusal refusal) {
                throw new InvalidImageException(
                        "layer " + layer + ": entry \"" + entry.getName() + "\": " + refusal.getMessage());
            } catch (IOException e) {
                throw new IOException("layer " + layer + ": entry \"" + entry.getName() + "\": " + e.getMessage(), e);
            }
        }
    }

    private void unpackEntry(TarArchiveEntry entry) throws IOException, Refusal {
        EntryPath path = EntryPath.parse(entry.getName(), "name");
        byte type = entry.getLinkFlag();
        // Old tars mark a directory only by the slash that ends its name.
        if ((type == TarConstants.LF_NORMAL || type == TarConstants.LF_OLDNORM) && entry.getName().endsWith("/")) {
            type = TarConstants.LF_DIR;
        }
        if (entry.isSparse()) {
            throw new Refusal("sparse files are not supported");
        }
        EntryMetadata metadata = EntryMetadata.of(entry, tar.xattrs());
        if (path.isRoot()) {
            if (type != TarConstants.LF_DIR) {
                throw new Refusal("the layer's root can only be a directory");
            }
            applyMetadata(tree.root(), SELF, metadata, false, false, false);
            directoryTimes.put(path, metadata);
            return;
        }
        String base = path.baseName();
        if (base.startsWith(WHITEOUT_PREFIX)) {
            whiteout(path, metadata);
            return;
        }
        switch (type) {
            case TarConstants.LF_NORMAL, TarConstants.LF_OLDNORM, TarConstants.LF_CONTIG -> regularFile(path, entry,
                    metadata);
            case TarConstants.LF_DIR -> directory(path, metadata);
            case TarConstants.LF_SYMLINK -> symlink(path, entry.getLinkName(), metadata);
            case TarConstants.LF_LINK -> hardLink(path, EntryPath.parse(entry.getLinkName(), "hard link target"));
            case TarConstants.LF_CHR -> node(path, LinuxCalls.S_IFCHR, entry.getDevMajor(), entry.getDevMinor(),
                    metadata);
            case TarConstants.LF_BLK -> node(path, LinuxCalls.S_IFBLK, entry.getDevMajor(), entry.getDevMinor(),
                    metadata);
            case TarConstants.LF_FIFO -> node(path, LinuxCalls.S_IFIFO, 0, 0, metadata);
            default -> throw new Refusal("unsupported entry type " + (type >= 0x21 && type < 0x7f
                    ? "'" + (char) type + "'" : String.format("0x%02x", type & 0xff)));
        }
    }

    private void regularFile(EntryPath path, TarArchiveEntry entry, EntryMetadata metadata)
            throws IOException, Refusal {
        long size = entry.getSize();
        if (size > usable - bytes) {
            // The disk is short, not the image wrong: ENOSPC ahead of time (the caller's resource exhausted), as
            // the same layer imports once there is room. An image error here told hosts the image was bad.
            throw new IOException("declared size " + size + " bytes is more than the " + Math.max(0, usable - bytes)
                    + " bytes left on the layer's file system: " + LinuxCalls.strerror(LinuxCalls.ENOSPC));
        }
        try (OwnedFd dir = tree.directory(path.parent(), true)) {
            byte[] name = path.base();
            replace(dir, name, path);
            try (OwnedFd file = OwnedFd.adopt(path.toString(),
                    dir.use(fd -> LinuxCalls.openat(fd, name, CREATE_FLAGS, 0600)))) {
                copy(file, size);
                // Through the descriptor: the very file just made, and fewer calls than by name.
                file.use(fd -> {
                    LinuxCalls.fchown(fd, metadata.uid(), metadata.gid());
                    LinuxCalls.fchmod(fd, metadata.mode());
                    for (Map.Entry<String, byte[]> xattr : metadata.xattrs().entrySet()) {
                        setXattr(xattr.getKey(), name, false,
                                () -> LinuxCalls.fsetxattr(fd, xattr.getKey(), xattr.getValue()));
                    }
                    LinuxCalls.futimens(fd, metadata.atimeNanos(), metadata.mtimeNanos());
                    return null;
                });
            }
            bytes += size;
            files.put(path, new FileBytes(size));
        }
    }

    /** A regular file's size and how many of its names this layer holds. */
    private static final class FileBytes {
        private final long size;
        private int names = 1;

        private FileBytes(long size) {
            this.size = size;
        }
    }

    /** {@code path} and, for a directory, everything under it is gone: their files' bytes with it. */
    private void forget(EntryPath path, boolean directory) {
        if (directory) {
            EntryPath.removeTree(files, path, this::release);
        } else {
            FileBytes file = files.remove(path);
            if (file != null) {
                release(file);
            }
        }
    }

    private void release(FileBytes file) {
        if (--file.names == 0) {
            bytes -= file.size;
        }
    }

    /** Copies exactly {@code size} bytes of the current entry into {@code file}. */
    private void copy(OwnedFd file, long size) throws IOException, Refusal {
        long left = size;
        while (left > 0) {
            int n;
            try {
                n = tar.read(buffer, 0, (int) Math.min(buffer.length, left));
            } catch (IOException e) {
                if (!source.ended) {
                    throw e;
                }
                n = -1;
            }
            if (n < 0) {
                throw new Refusal("truncated: the layer ends after " + (size - left) + " of its " + size + " bytes");
            }
            MemorySegment.copy(buffer, 0, nativeBuffer, ValueLayout.JAVA_BYTE, 0, n);
            for (long written = 0; written < n; ) {
                long w = file.write(nativeBuffer.asSlice(written, n - written), callState);
                if (w > 0) {
                    written += w;
                }
            }
            left -= n;
        }
    }

    private void directory(EntryPath path, EntryMetadata metadata) throws IOException, Refusal {
        try (OwnedFd dir = tree.directory(path.parent(), true)) {
            byte[] name = path.base();
            FileStatus existing = LayerTree.status(dir, name);
            if (existing == null || !existing.isDirectory()) {
                replace(dir, name, path);
                dir.use(fd -> {
                    LinuxCalls.mkdirat(fd, name, 0700);
                    return null;
                });
            }
            applyMetadata(dir, name, metadata, false, false, false);
            directoryTimes.put(path, metadata);
        }
    }

    private void symlink(EntryPath path, String target, EntryMetadata metadata) throws IOException, Refusal {
        if (target.isEmpty() || target.indexOf('\0') >= 0 || target.indexOf('\uFFFD') >= 0) {
            throw new Refusal("symlink target is empty, has a NUL byte or is not valid UTF-8");
        }
        // symlinkat takes fewer than PATH_MAX bytes: a longer target failed with ENAMETOOLONG, an I/O error that
        // looked retryable (UnavailableException) for an image that never imports.
        int targetBytes = target.getBytes(StandardCharsets.UTF_8).length;
        if (targetBytes >= EntryPath.PATH_MAX) {
            throw new Refusal("symlink target of " + targetBytes + " bytes is longer than the "
                    + (EntryPath.PATH_MAX - 1) + " a symlink can hold");
        }
        try (OwnedFd dir = tree.directory(path.parent(), true)) {
            byte[] name = path.base();
            replace(dir, name, path);
            dir.use(fd -> {
                LinuxCalls.symlinkat(target.getBytes(StandardCharsets.UTF_8), fd, name);
                return null;
            });
            applyMetadata(dir, name, metadata, true, true, true);
        }
    }

    /** A hard link carries no metadata of its own: it is one more name for a file this layer already made. */
    private void hardLink(EntryPath path, EntryPath source) throws IOException, Refusal {
        if (source.isRoot()) {
            throw new Refusal("hard link to the layer's root");
        }
        try (OwnedFd sourceDir = tree.directory(source.parent(), false);
                OwnedFd dir = tree.directory(path.parent(), true)) {
            byte[] sourceName = source.base();
            FileStatus linked = LayerTree.status(sourceDir, sourceName);
            if (linked == null) {
                throw new Refusal("hard link to \"" + source + "\", which is not in the layer");
            }
            if (linked.isDirectory()) {
                throw new Refusal("hard link to the directory \"" + source + "\"");
            }
            // Replacing the directory holding the target removed the target first: linkat failed with ENOENT, a
            // storage error (FailedPreconditionException) for an image that never imports.
            if (!path.equals(source) && path.contains(source)) {
                throw new Refusal("hard link over \"" + path + "\", the directory holding its target \"" + source
                        + "\"");
            }
            byte[] name = path.base();
            FileStatus existing = LayerTree.status(dir, name);
            if (existing != null && existing.inode() == linked.inode()) {
                return;
            }
            replace(dir, name, path);
            dir.use(to -> sourceDir.use(from -> {
                LinuxCalls.linkat(from, sourceName, to, name);
                return null;
            }));
            FileBytes file = files.get(source);
            if (file != null) {
                file.names++;
                files.put(path, file);
            }
        }
    }

    private void node(EntryPath path, int type, int major, int minor, EntryMetadata metadata)
            throws IOException, Refusal {
        try (OwnedFd dir = tree.directory(path.parent(), true)) {
            byte[] name = path.base();
            replace(dir, name, path);
            mknod(dir, name, type | metadata.mode(), major, minor);
            applyMetadata(dir, name, metadata, true, false, true);
        }
    }

    private void whiteout(EntryPath path, EntryMetadata metadata) throws IOException, Refusal {
        String base = path.baseName();
        if (base.equals(OPAQUE)) {
            try (OwnedFd dir = tree.directory(path.parent(), true)) {
                dir.use(fd -> {
                    LinuxCalls.fsetxattr(fd, OPAQUE_XATTR, new byte[] {'y'});
                    return null;
                });
            }
            return;
        }
        if (base.startsWith(WHITEOUT_PREFIX + WHITEOUT_PREFIX)) {
            return;
        }
        String hidden = base.substring(WHITEOUT_PREFIX.length());
        if (hidden.isEmpty() || hidden.equals(".") || hidden.equals("..")) {
            throw new Refusal("whiteout of \"" + hidden + "\"");
        }
        EntryPath whiteout = path.sibling(hidden);
        try (OwnedFd dir = tree.directory(whiteout.parent(), true)) {
            byte[] name = whiteout.base();
            // A whiteout hides what the layers below hold; replacing an entry of this very layer instead deleted it.
            if (LayerTree.status(dir, name) != null && !whiteouts.containsKey(whiteout)) {
                throw new Refusal("whiteout of an entry of the same layer");
            }
            replace(dir, name, whiteout);
            mknod(dir, name, LinuxCalls.S_IFCHR, 0, 0);
            whiteouts.put(whiteout, true);
            dir.use(fd -> {
                LinuxCalls.lchownat(fd, name, metadata.uid(), metadata.gid());
                return null;
            });
        }
    }

    private static void mknod(OwnedFd dir, byte[] name, int mode, int major, int minor) throws IOException {
        try {
            dir.use(fd -> {
                LinuxCalls.mknodat(fd, name, mode, major, minor);
                return null;
            });
        } catch (ErrnoException e) {
            if (e.errno() == LinuxCalls.EPERM) {
                throw new IOException("cannot make a device node here (mknod needs CAP_MKNOD, outside a user "
                        + "namespace): " + e.getMessage(), e);
            }
            throw e;
        }
    }

    /** Makes room for a new file at {@code path}: removes what is there, a directory with its tree. */
    private void replace(OwnedFd dir, byte[] name, EntryPath path) throws IOException {
        FileStatus existing = LayerTree.status(dir, name);
        if (existing == null) {
            return;
        }
        if (existing.isDirectory()) {
            EntryPath.removeTree(directoryTimes, path, metadata -> { });
        }
        EntryPath.removeTree(whiteouts, path, whiteout -> { });
        tree.remove(dir, name);
        forget(path, existing.isDirectory());
    }

    /**
     * Owner, then mode (not a symlink's: Linux keeps none), xattrs, and the times unless a directory's;
     * {@code special} is neither a regular file nor a directory (Linux refuses {@code user.*} xattrs on those).
     */
    private void applyMetadata(OwnedFd dir, byte[] name, EntryMetadata metadata, boolean times, boolean symlink,
            boolean special) throws IOException {
        dir.use(fd -> {
            LinuxCalls.lchownat(fd, name, metadata.uid(), metadata.gid());
            if (!symlink) {
                LinuxCalls.lchmodat(fd, name, metadata.mode());
            }
            for (Map.Entry<String, byte[]> xattr : metadata.xattrs().entrySet()) {
                setXattr(xattr.getKey(), name, special,
                        () -> LinuxCalls.lsetxattrat(fd, name, xattr.getKey(), xattr.getValue()));
            }
            if (times) {
                LinuxCalls.lutimesat(fd, name, metadata.atimeNanos(), metadata.mtimeNanos());
            }
            return null;
        });
    }

    /** One attempt to set an xattr. */
    @FunctionalInterface
    private interface XattrCall {
        void set() throws IOException;
    }

    /**
     * Exactly what containerd drops with a warning: any xattr the file system does not support
     * ({@code EOPNOTSUPP}), and {@code EPERM} for a {@code user.*} xattr on a {@code special} file (a symlink,
     * device or FIFO, on which Linux refuses that namespace). Anything else fails the layer: swallowing every
     * {@code EPERM} silently dropped a {@code security.capability} the image needs.
     */
    private void setXattr(String attribute, byte[] name, boolean special, XattrCall call) throws IOException {
        try {
            call.set();
        } catch (ErrnoException e) {
            boolean userOnSpecial = e.errno() == LinuxCalls.EPERM && special && attribute.startsWith("user.");
            if (e.errno() != LinuxCalls.EOPNOTSUPP && !userOnSpecial) {
                throw e;
            }
            log.warn("layer {}: xattr {} of {} not kept: {}", layer, attribute, LinuxCalls.display(name),
                    e.getMessage());
        }
    }

    /** Every directory's times, deepest first, now that nothing more is made in them. */
    private void setDirectoryTimes() throws IOException {
        var deepestFirst = directoryTimes.entrySet().stream()
                .sorted(Comparator.comparingInt(
                        (Map.Entry<EntryPath, EntryMetadata> e) -> e.getKey().components().size()).reversed())
                .toList();
        for (Map.Entry<EntryPath, EntryMetadata> directory : deepestFirst) {
            EntryPath path = directory.getKey();
            EntryMetadata metadata = directory.getValue();
            try {
                if (path.isRoot()) {
                    tree.root().use(fd -> {
                        LinuxCalls.lutimesat(fd, SELF, metadata.atimeNanos(), metadata.mtimeNanos());
                        return null;
                    });
                    continue;
                }
                try (OwnedFd dir = tree.directory(path.parent(), false)) {
                    byte[] name = path.base();
                    dir.use(fd -> {
                        LinuxCalls.lutimesat(fd, name, metadata.atimeNanos(), metadata.mtimeNanos());
                        return null;
                    });
                }
            } catch (Refusal | IOException e) {
                throw new IOException("layer " + layer + ": times of directory \"" + path + "\": " + e.getMessage(),
                        e);
            }
        }
    }

    /**
     * The caller's stream, telling when it ended: commons-compress reports a tar cut inside an entry as a plain
     * {@link IOException}, which must not be confused with a read that failed.
     */
    private static final class SourceEnd extends FilterInputStream {
        boolean ended;
        /** Whether a read of the stream itself failed: an I/O error, not one of the tar's headers. */
        boolean failed;

        SourceEnd(InputStream in) {
            super(in);
        }

        @Override
        public int read() throws IOException {
            try {
                int b = super.read();
                ended |= b < 0;
                return b;
            } catch (IOException | RuntimeException e) {
                failed = true;
                throw e;
            }
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            try {
                int n = super.read(b, off, len);
                ended |= n < 0;
                return n;
            } catch (IOException | RuntimeException e) {
                failed = true;
                throw e;
            }
        }

        @Override
        public long skip(long n) throws IOException {
            try {
                return super.skip(n);
            } catch (IOException | RuntimeException e) {
                failed = true;
                throw e;
            }
        }
    }
}
