package org.shimmer.runtime.linux.layer;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.shimmer.runtime.linux.testing.TarLayers.concat;
import static org.shimmer.runtime.linux.testing.TarLayers.paxRecord;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** PAX records to xattrs with values as bytes: pure logic. */
class XattrTarInputStreamTest {

    @Test
    void onlyXattrRecordsCountAndTheLastOfANameWins() {
        byte[] header = concat(concat(concat(
                paxRecord("path", "some/long/name".getBytes(UTF_8)),
                paxRecord("SCHILY.xattr.user.a", new byte[] {(byte) 0xff, 0x00, '\n', '='})),
                paxRecord("SCHILY.xattr.user.b", "first".getBytes(UTF_8))),
                paxRecord("SCHILY.xattr.user.b", "second".getBytes(UTF_8)));

        Map<String, byte[]> xattrs = XattrTarInputStream.parse(header);

        assertThat(xattrs).containsOnlyKeys("user.a", "user.b");
        assertThat(xattrs.get("user.a")).containsExactly(0xff, 0x00, '\n', '=');
        assertThat(xattrs.get("user.b")).isEqualTo("second".getBytes(UTF_8));
    }

    @Test
    void anEmptyValueDeletesTheName() {
        byte[] header = concat(paxRecord("SCHILY.xattr.user.a", "x".getBytes(UTF_8)),
                paxRecord("SCHILY.xattr.user.a", new byte[0]));

        assertThat(XattrTarInputStream.parse(header)).isEmpty();
    }

    @Test
    void aMalformedRecordEndsTheParse() {
        byte[] header = concat(paxRecord("SCHILY.xattr.user.a", "x".getBytes(UTF_8)),
                "99 SCHILY.xattr.user.b=cut\n".getBytes(UTF_8));

        assertThat(XattrTarInputStream.parse(header)).containsOnlyKeys("user.a");
    }
}
