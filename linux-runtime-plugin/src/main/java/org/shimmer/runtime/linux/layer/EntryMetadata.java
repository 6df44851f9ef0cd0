package org.shimmer.runtime.linux.layer;

import java.nio.charset.StandardCharsets;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.Map;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;

/**
 * What a tar entry says about its file beside the content: owner, permission bits (set-id and sticky included),
 * times in nanoseconds and extended attributes (PAX {@code SCHILY.xattr.*}).
 *
 * <p>Invariant: no {@code trusted.overlay.*} attribute ever comes from a layer. Overlayfs reads those as its own
 * (opaque directories, redirects, metacopy); a layer carrying one could hide or redirect files of the layers below
 * it without a whiteout entry anyone would see. The unpacker alone sets {@code trusted.overlay.opaque}, from
 * {@code .wh..wh..opq}.
 */
record EntryMetadata(int uid, int gid, int mode, long atimeNanos, long mtimeNanos, Map<String, byte[]> xattrs) {

    private static final String OVERLAY_XATTRS = "trusted.overlay.";
    private static final long MAX_ID = 0xFFFF_FFFEL;
    /** The kernel's limits: beyond them setxattr fails with an I/O error that looked retryable, never succeeding. */
    static final int XATTR_NAME_MAX = 255;
    static final int XATTR_SIZE_MAX = 65536;

    /** The metadata of {@code entry}, whose PAX header gave {@code xattrs} (as bytes). */
    static EntryMetadata of(TarArchiveEntry entry, Map<String, byte[]> xattrs) throws Refusal {
        for (String name : xattrs.keySet()) {
            if (name.indexOf('\uFFFD') >= 0) {
                throw new Refusal("xattr name " + name + " is not valid UTF-8");
            }
            if (name.startsWith(OVERLAY_XATTRS)) {
                throw new Refusal("xattr " + name + " would forge overlay metadata");
            }
            int nameBytes = name.getBytes(StandardCharsets.UTF_8).length;
            if (nameBytes > XATTR_NAME_MAX) {
                throw new Refusal("xattr name of " + nameBytes + " bytes is more than the " + XATTR_NAME_MAX
                        + " Linux takes");
            }
            int valueBytes = xattrs.get(name).length;
            if (valueBytes > XATTR_SIZE_MAX) {
                throw new Refusal("xattr " + name + " of " + valueBytes + " bytes is more than the "
                        + XATTR_SIZE_MAX + " Linux takes");
            }
        }
        long mtime = nanos(entry.getLastModifiedTime(), "mtime");
        FileTime accessed = entry.getLastAccessTime();
        return new EntryMetadata(id(entry.getLongUserId(), "uid"), id(entry.getLongGroupId(), "gid"),
                entry.getMode() & 07777, accessed == null ? mtime : nanos(accessed, "atime"), mtime, xattrs);
    }

    /** A 32-bit id as {@code chown} takes it; {@code 0xFFFFFFFF} means "unchanged" to the kernel, so is refused. */
    private static int id(long id, String what) throws Refusal {
        if (id < 0 || id > MAX_ID) {
            throw new Refusal(what + " " + id + " is out of range");
        }
        return (int) id;
    }

    /** Nanoseconds since the epoch, as {@code utimensat} is given them here: years 1678 to 2262. */
    private static long nanos(FileTime time, String what) throws Refusal {
        Instant instant = time.toInstant();
        try {
            return Math.addExact(Math.multiplyExact(instant.getEpochSecond(), 1_000_000_000L), instant.getNano());
        } catch (ArithmeticException e) {
            throw new Refusal(what + " " + instant + " is out of range");
        }
    }
}
