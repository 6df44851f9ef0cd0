package org.shimmer.runtime.linux.layer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * commons-compress's tar reader, plus each entry's {@code SCHILY.xattr.*} values as the bytes the PAX header holds.
 *
 * <p>The bug that forced it: commons-compress decodes every PAX value as UTF-8, so a binary xattr lost its bytes
 * (a {@code security.capability} granting {@code cap_setuid} holds 0x80, which became U+FFFD). The reader parses
 * a PAX header by reading it through this stream, so the raw header is kept here as it goes by and parsed again
 * with values left as bytes.
 *
 * <p>Also refused here, as {@link HeaderRefusal}, before commons-compress acts on them:
 * <ul>
 *   <li>a PAX header or GNU long name or link larger than {@value #MAX_HEADER} bytes (Go's {@code archive/tar}
 *       limit): commons-compress buffers them whole, so a layer could make us hold any amount of memory (an
 *       image layout's archive is read through this class for that alone);</li>
 *   <li>a global PAX header with any key but {@code comment}, {@code charset} or {@code hdrcharset}:
 *       commons-compress merges global records into every later entry, so a global {@code path=} renamed them
 *       all, where containerd (Go's reader) ignores global headers;</li>
 *   <li>more than {@value #MAX_HEADERS} headers before one entry: commons-compress reads the entry after a header
 *       by calling itself, the header it read still held, so a chain of them, each under the cap, held them all
 *       at once and overflowed the stack (20 000 long names of one byte, a 20 MiB archive).</li>
 * </ul>
 */
public final class XattrTarInputStream extends TarArchiveInputStream {

    private static final String XATTR_PREFIX = "SCHILY.xattr.";
    public static final int MAX_HEADER = 1 << 20;
    /** The most headers one entry may have: a global and a PAX header, a GNU long link and name, then twice that. */
    public static final int MAX_HEADERS = 8;
    private static final Set<String> HARMLESS_GLOBAL_KEYS = Set.of("comment", "charset", "hdrcharset");

    /** A header entry this reader will not act on; {@link #entry()} names it. */
    public static final class HeaderRefusal extends IOException {

        private final String entry;

        HeaderRefusal(String entry, String reason) {
            super(reason);
            this.entry = entry;
        }

        public String entry() {
            return entry;
        }
    }

    private final ByteArrayOutputStream paxHeader = new ByteArrayOutputStream();
    private final ByteArrayOutputStream globalHeader = new ByteArrayOutputStream();
    private String globalHeaderName;
    private Map<String, byte[]> xattrs = Map.of();
    private int depth;

    public XattrTarInputStream(InputStream in) {
        super(in, StandardCharsets.UTF_8.name());
    }

    /**
     * The next entry. commons-compress calls this again from inside itself once it has read a PAX or long name
     * header: only the outermost call starts and ends an entry's capture.
     */
    @Override
    public TarArchiveEntry getNextEntry() throws IOException {
        if (depth == 0) {
            paxHeader.reset();
            globalHeader.reset();
            globalHeaderName = null;
        }
        depth++;
        TarArchiveEntry entry;
        try {
            // Called again from inside itself after each header: the depth counts the headers read so far.
            if (depth > MAX_HEADERS + 1) {
                TarArchiveEntry header = getCurrentEntry();
                throw new HeaderRefusal(header == null ? "" : header.getName(), "more than " + MAX_HEADERS
                        + " headers before one entry");
            }
            entry = super.getNextEntry();
        } finally {
            depth--;
        }
        if (depth == 0) {
            if (globalHeaderName != null) {
                for (String key : records(globalHeader.toByteArray()).keySet()) {
                    if (!HARMLESS_GLOBAL_KEYS.contains(key)) {
                        throw new HeaderRefusal(globalHeaderName, "global PAX header record \"" + key
                                + "\" would apply to every later entry (only comment, charset, hdrcharset are taken)");
                    }
                }
            }
            xattrs = paxHeader.size() == 0 ? Map.of() : parse(paxHeader.toByteArray());
        }
        return entry;
    }

    /** The current entry's xattrs from its PAX header: name to value bytes, the last record of a name winning. */
    Map<String, byte[]> xattrs() {
        return xattrs;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        TarArchiveEntry current = getCurrentEntry();
        boolean header = current != null
                && (current.isPaxHeader() || current.isGNULongNameEntry() || current.isGNULongLinkEntry());
        if (header && current.getSize() > MAX_HEADER) {
            throw new HeaderRefusal(current.getName(), "header of " + current.getSize() + " bytes is more than the "
                    + MAX_HEADER + " taken");
        }
        int n = super.read(b, off, len);
        if (n > 0 && current != null && current.isGlobalPaxHeader()) {
            globalHeaderName = current.getName();
            globalHeader.write(b, off, n);
        } else if (n > 0 && current != null && current.isPaxHeader()) {
            paxHeader.write(b, off, n);
        }
        return n;
    }

    /** The xattrs of a PAX header: name to value bytes, the last record of a name winning, an empty value deleting. */
    static Map<String, byte[]> parse(byte[] header) {
        Map<String, byte[]> found = new LinkedHashMap<>();
        for (Map.Entry<String, byte[]> record : records(header).entrySet()) {
            if (record.getKey().startsWith(XATTR_PREFIX) && record.getValue().length > 0) {
                found.put(record.getKey().substring(XATTR_PREFIX.length()), record.getValue());
            }
        }
        return Map.copyOf(found);
    }

    /**
     * PAX records, {@code "<length> <key>=<value>\n"} with the length counting the whole record, key to value bytes
     * (the last record of a key winning). A malformed one ends the parse: commons-compress has already refused the
     * header then.
     */
    private static Map<String, byte[]> records(byte[] header) {
        Map<String, byte[]> found = new LinkedHashMap<>();
        int at = 0;
        while (at < header.length) {
            int space = indexOf(header, (byte) ' ', at, header.length);
            if (space < 0) {
                break;
            }
            int length;
            try {
                length = Integer.parseInt(new String(header, at, space - at, StandardCharsets.US_ASCII));
            } catch (NumberFormatException e) {
                break;
            }
            int end = at + length;
            if (length <= 0 || end > header.length || header[end - 1] != '\n') {
                break;
            }
            int equals = indexOf(header, (byte) '=', space + 1, end);
            if (equals < 0) {
                break;
            }
            String key = new String(header, space + 1, equals - space - 1, StandardCharsets.UTF_8);
            found.remove(key);
            found.put(key, Arrays.copyOfRange(header, equals + 1, end - 1));
            at = end;
        }
        return found;
    }

    private static int indexOf(byte[] bytes, byte wanted, int from, int to) {
        for (int i = from; i < to; i++) {
            if (bytes[i] == wanted) {
                return i;
            }
        }
        return -1;
    }
}
