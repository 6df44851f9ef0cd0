package org.shimmer.runtime.linux.layer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * commons-compress's tar reader, plus each entry's {@code SCHILY.xattr.*} values as the bytes the PAX header holds.
 *
 * <p>The bug that forced it: commons-compress decodes every PAX value as UTF-8, so a binary xattr lost its bytes
 * (a {@code security.capability} granting {@code cap_setuid} holds 0x80, which became U+FFFD). The reader parses
 * a PAX header by reading it through this stream, so the raw header is kept here as it goes by and parsed again
 * with values left as bytes.
 */
final class XattrTarInputStream extends TarArchiveInputStream {

    private static final String XATTR_PREFIX = "SCHILY.xattr.";

    private final ByteArrayOutputStream paxHeader = new ByteArrayOutputStream();
    private Map<String, byte[]> xattrs = Map.of();
    private int depth;

    XattrTarInputStream(InputStream in) {
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
        }
        depth++;
        TarArchiveEntry entry;
        try {
            entry = super.getNextEntry();
        } finally {
            depth--;
        }
        if (depth == 0) {
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
        int n = super.read(b, off, len);
        TarArchiveEntry current = getCurrentEntry();
        if (n > 0 && current != null && current.isPaxHeader() && !current.isGlobalPaxHeader()) {
            paxHeader.write(b, off, n);
        }
        return n;
    }

    /**
     * PAX records, {@code "<length> <key>=<value>\n"} with the length counting the whole record. A malformed one
     * ends the parse: commons-compress has already refused the header then.
     */
    static Map<String, byte[]> parse(byte[] header) {
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
            byte[] value = Arrays.copyOfRange(header, equals + 1, end - 1);
            if (key.startsWith(XATTR_PREFIX)) {
                String name = key.substring(XATTR_PREFIX.length());
                // An empty value deletes the key in PAX.
                if (value.length == 0) {
                    found.remove(name);
                } else {
                    found.put(name, value);
                }
            }
            at = end;
        }
        return Map.copyOf(found);
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
