package org.shimmer.runtime.linux.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.Arrays;
import java.util.function.Consumer;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;

/**
 * Hand-made layer tars, hostile ones included: names are written exactly as given (absolute, with {@code ..}),
 * sizes and ids as big as PAX allows. Each method adds one entry; a {@link Consumer} given last adjusts the entry
 * before it is written (owner, mtime, PAX headers such as {@code SCHILY.xattr.user.k}).
 *
 * <pre>{@code
 * byte[] tar = TarLayers.layer()
 *         .dir("etc", 0755)
 *         .file("etc/hostname", "box\n", 0644, e -> e.setIds(1000, 1000))
 *         .symlink("etc/localtime", "/usr/share/zoneinfo/UTC")
 *         .bytes();
 * }</pre>
 */
public final class TarLayers {

    /** Every entry's mtime unless a customizer sets another: 2024-01-02T03:04:05Z. */
    public static final Instant DEFAULT_MTIME = Instant.parse("2024-01-02T03:04:05Z");

    private static final Consumer<TarArchiveEntry> NOTHING = entry -> {};

    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final TarArchiveOutputStream tar;
    private boolean cut;

    private TarLayers() {
        // One 512-byte record per block: a tar cut after a header holds that header, not a partial block.
        tar = new TarArchiveOutputStream(bytes, TarConstants.DEFAULT_RCDSIZE);
        tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
        tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
        tar.setAddPaxHeadersForNonAsciiNames(true);
    }

    /** A new, empty layer. */
    public static TarLayers layer() {
        return new TarLayers();
    }

    public TarLayers dir(String name, int mode) {
        return dir(name, mode, NOTHING);
    }

    public TarLayers dir(String name, int mode, Consumer<TarArchiveEntry> customizer) {
        TarArchiveEntry entry = entry(name, TarConstants.LF_DIR, mode);
        return add(entry, new byte[0], customizer);
    }

    public TarLayers file(String name, String content, int mode) {
        return file(name, content.getBytes(StandardCharsets.UTF_8), mode, NOTHING);
    }

    public TarLayers file(String name, String content, int mode, Consumer<TarArchiveEntry> customizer) {
        return file(name, content.getBytes(StandardCharsets.UTF_8), mode, customizer);
    }

    public TarLayers file(String name, byte[] content, int mode, Consumer<TarArchiveEntry> customizer) {
        TarArchiveEntry entry = entry(name, TarConstants.LF_NORMAL, mode);
        entry.setSize(content.length);
        return add(entry, content, customizer);
    }

    public TarLayers symlink(String name, String target) {
        return symlink(name, target, NOTHING);
    }

    public TarLayers symlink(String name, String target, Consumer<TarArchiveEntry> customizer) {
        TarArchiveEntry entry = entry(name, TarConstants.LF_SYMLINK, 0777);
        entry.setLinkName(target);
        return add(entry, new byte[0], customizer);
    }

    public TarLayers hardLink(String name, String target) {
        TarArchiveEntry entry = entry(name, TarConstants.LF_LINK, 0644);
        entry.setLinkName(target);
        return add(entry, new byte[0], NOTHING);
    }

    public TarLayers charDevice(String name, int major, int minor, int mode) {
        TarArchiveEntry entry = entry(name, TarConstants.LF_CHR, mode);
        entry.setDevMajor(major);
        entry.setDevMinor(minor);
        return add(entry, new byte[0], NOTHING);
    }

    public TarLayers blockDevice(String name, int major, int minor, int mode) {
        TarArchiveEntry entry = entry(name, TarConstants.LF_BLK, mode);
        entry.setDevMajor(major);
        entry.setDevMinor(minor);
        return add(entry, new byte[0], NOTHING);
    }

    public TarLayers fifo(String name, int mode) {
        return add(entry(name, TarConstants.LF_FIFO, mode), new byte[0], NOTHING);
    }

    /**
     * A regular file preceded by a PAX header of {@code records} written as given (see {@link #paxRecord}), so
     * values can be any bytes, as Go's archive/tar writes them.
     */
    public TarLayers fileWithRawPax(String name, String content, int mode, byte[] records) {
        TarArchiveEntry header = new TarArchiveEntry("PaxHeaders/" + name, TarConstants.LF_PAX_EXTENDED_HEADER_LC,
                true);
        header.setSize(records.length);
        header.setLastModifiedTime(FileTime.from(DEFAULT_MTIME));
        add(header, records, NOTHING);
        return file(name, content, mode);
    }

    /** One PAX record, {@code "<length> <key>=<value>\n"}, its length counting itself. */
    public static byte[] paxRecord(String key, byte[] value) {
        byte[] keyBytes = key.getBytes(StandardCharsets.UTF_8);
        int rest = 1 + keyBytes.length + 1 + value.length + 1;
        int length = rest + 1;
        while (String.valueOf(length).length() + rest != length) {
            length++;
        }
        ByteArrayOutputStream record = new ByteArrayOutputStream();
        record.writeBytes((length + " " + key + "=").getBytes(StandardCharsets.UTF_8));
        record.writeBytes(value);
        record.write('\n');
        return record.toByteArray();
    }

    /** An entry of any type flag, no content. */
    public TarLayers typed(String name, byte type, Consumer<TarArchiveEntry> customizer) {
        return add(entry(name, type, 0644), new byte[0], customizer);
    }

    /**
     * A regular file declaring {@code declaredSize} bytes of which only {@code content} follows, and nothing
     * after: the tar ends inside this entry. Must be the last entry.
     */
    public TarLayers truncatedFile(String name, long declaredSize, byte[] content) {
        TarArchiveEntry entry = entry(name, TarConstants.LF_NORMAL, 0644);
        entry.setSize(declaredSize);
        try {
            tar.putArchiveEntry(entry);
            tar.write(content);
            tar.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        cut = true;
        return this;
    }

    /** The tar: finished with its end-of-archive records, or as cut by {@link #truncatedFile}. */
    public byte[] bytes() {
        try {
            if (!cut) {
                tar.close();
            }
            return bytes.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** {@code first} then {@code second}. */
    public static byte[] concat(byte[] first, byte[] second) {
        byte[] both = Arrays.copyOf(first, first.length + second.length);
        System.arraycopy(second, 0, both, first.length, second.length);
        return both;
    }

    /** Writes {@link #bytes()} to {@code path}; returns it. */
    public Path writeTo(Path path) throws IOException {
        Files.write(path, bytes());
        return path;
    }

    private static TarArchiveEntry entry(String name, byte type, int mode) {
        TarArchiveEntry entry = new TarArchiveEntry(name, type, true);
        entry.setMode(mode);
        entry.setLastModifiedTime(FileTime.from(DEFAULT_MTIME));
        entry.setIds(0, 0);
        return entry;
    }

    private TarLayers add(TarArchiveEntry entry, byte[] content, Consumer<TarArchiveEntry> customizer) {
        if (cut) {
            throw new IllegalStateException("the tar was cut by truncatedFile");
        }
        customizer.accept(entry);
        try {
            tar.putArchiveEntry(entry);
            tar.write(content);
            tar.closeArchiveEntry();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return this;
    }
}
