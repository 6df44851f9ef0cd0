package org.shimmer.runtime.linux.layer;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.shimmer.runtime.image.InvalidImageException;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.TarLayers;

/**
 * Unpacking real tars into real directories, as root: every hostile entry of issue 12 refused by name with
 * nothing written outside the layer (a sentinel directory beside it stays empty), and everything a layer says
 * about its files kept exactly.
 */
class LayerUnpackerTest {

    private static final String LAYER = "sha256:test-layer";
    private static final LinkOption[] NOFOLLOW = {LinkOption.NOFOLLOW_LINKS};
    /**
     * Nested one-letter directories, close to what PATH_MAX allows in a layer, while their absolute paths (the
     * test's checks and the temporary directory's cleanup use those) stay under it too.
     */
    private static final int DEEPEST = 1900;
    private static final long SMALL_STACK = 192 * 1024;
    private static final int CAP_SETFCAP = 31;

    @TempDir
    Path temp;

    private Path target;
    private Path sentinel;
    private Map<Integer, String> fdsBefore;

    @BeforeEach
    void setUp() throws IOException {
        target = Files.createDirectory(temp.resolve("layer"));
        sentinel = Files.createDirectory(temp.resolve("sentinel"));
        fdsBefore = Leaks.openFds();
    }

    @AfterEach
    void nothingLeaked() throws Exception {
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(2))).isEmpty();
        try (Stream<Path> left = Files.list(sentinel)) {
            assertThat(left).isEmpty();
        }
    }

    // Hostile entries: refused, naming the layer and the entry; nothing lands outside the layer.

    @Test
    void dotDotEscapeIsRefused() {
        assertRefused(TarLayers.layer().file("ok", "x", 0644).file("../sentinel/escape", "x", 0644).bytes(),
                "../sentinel/escape", "has a \"..\" segment");
    }

    @Test
    void dotDotInsideANameIsRefusedRatherThanCleaned() {
        assertRefused(TarLayers.layer().dir("a", 0755).file("a/../../sentinel/escape", "x", 0644).bytes(),
                "a/../../sentinel/escape", "has a \"..\" segment");
    }

    @Test
    void absoluteNameIsRefused() {
        String outside = sentinel.resolve("abs").toString();
        assertRefused(TarLayers.layer().file(outside, "x", 0644).bytes(), outside, "is absolute");
    }

    @Test
    void fileThroughASymlinkToRootIsRefused() {
        String escape = "shimmer-unpack-escape-" + UUID.randomUUID();
        assertRefused(TarLayers.layer().symlink("root", "/").file("root/tmp/" + escape, "x", 0644).bytes(),
                "root/tmp/" + escape, "\"root\" is a symlink");
        assertThat(Path.of("/tmp", escape)).doesNotExist();
    }

    @Test
    void fileThroughASymlinkMadeEarlierInTheLayerIsRefused() {
        assertRefused(TarLayers.layer().symlink("out", sentinel.toString()).file("out/x", "x", 0644).bytes(),
                "out/x", "\"out\" is a symlink");
    }

    @Test
    void fileThroughARelativeSymlinkOutOfTheLayerIsRefused() {
        assertRefused(TarLayers.layer().dir("d", 0755).symlink("d/up", "../../sentinel").file("d/up/x", "x", 0644)
                .bytes(), "d/up/x", "\"d/up\" is a symlink");
    }

    @Test
    void fileThroughASymlinkChainIsRefused() {
        assertRefused(TarLayers.layer()
                        .symlink("a", "b")
                        .symlink("b", "c")
                        .symlink("c", sentinel.toString())
                        .file("a/x", "x", 0644)
                        .bytes(),
                "a/x", "\"a\" is a symlink");
    }

    @Test
    void directoryThroughASymlinkIsRefused() {
        assertRefused(TarLayers.layer().symlink("s", sentinel.toString()).dir("s/sub", 0755).bytes(), "s/sub/",
                "\"s\" is a symlink");
    }

    @Test
    void whiteoutThroughASymlinkIsRefused() {
        assertRefused(TarLayers.layer().symlink("s", sentinel.toString()).file("s/.wh.victim", "", 0644).bytes(),
                "s/.wh.victim", "\"s\" is a symlink");
    }

    @Test
    void opaqueMarkerThroughASymlinkIsRefused() throws IOException {
        assertRefused(TarLayers.layer().symlink("s", sentinel.toString()).file("s/.wh..wh..opq", "", 0644).bytes(),
                "s/.wh..wh..opq", "\"s\" is a symlink");
        assertThat(LinuxCalls.lgetxattr(sentinel, LayerUnpacker.OPAQUE_XATTR)).isNull();
    }

    @Test
    void hardLinkOutOfTheLayerIsRefused() {
        assertRefused(TarLayers.layer().hardLink("h", "../sentinel/x").bytes(), "h",
                "hard link target has a \"..\" segment");
    }

    @Test
    void hardLinkToAnAbsoluteNameIsRefused() {
        assertRefused(TarLayers.layer().hardLink("h", "/etc/passwd").bytes(), "h", "hard link target is absolute");
    }

    @Test
    void hardLinkToAMissingEntryIsRefused() {
        assertRefused(TarLayers.layer().file("a", "x", 0644).hardLink("h", "missing").bytes(), "h",
                "hard link to \"missing\", which is not in the layer");
    }

    @Test
    void hardLinkToADirectoryIsRefused() {
        assertRefused(TarLayers.layer().dir("d", 0755).hardLink("h", "d").bytes(), "h",
                "hard link to the directory \"d\"");
    }

    @Test
    void hardLinkThroughASymlinkIsRefused() throws IOException {
        Files.writeString(temp.resolve("secret"), "s");
        assertRefused(TarLayers.layer().symlink("s", temp.toString()).hardLink("h", "s/secret").bytes(), "h",
                "\"s\" is a symlink");
        assertThat(target.resolve("h")).doesNotExist();
    }

    @Test
    void hardLinkOverTheDirectoryHoldingItsTargetIsRefused() throws IOException {
        assertRefused(TarLayers.layer().dir("a", 0755).file("a/b", "x", 0644).hardLink("a", "a/b").bytes(), "a",
                "hard link over \"a\", the directory holding its target \"a/b\"");
    }

    @Test
    void symlinkTargetLongerThanASymlinkHoldsIsRefused() throws IOException {
        String longest = "t".repeat(4095);
        unpack(TarLayers.layer().symlink("ok", longest).bytes());
        assertThat(Files.readSymbolicLink(target.resolve("ok"))).hasToString(longest);

        assertRefused(TarLayers.layer().symlink("s", longest + "t").bytes(), "s",
                "symlink target of 4096 bytes is longer than the 4095 a symlink can hold");
    }

    @Test
    void hugeDeclaredSizeIsNoSpaceBeforeWriting() {
        assertThatThrownBy(() -> unpack(TarLayers.layer().truncatedFile("huge", 1L << 50, new byte[0]).bytes()))
                .isInstanceOf(IOException.class)
                .isNotInstanceOf(InvalidImageException.class)
                .hasMessageStartingWith("layer " + LAYER + ": entry \"huge\": declared size 1125899906842624 bytes "
                        + "is more than the")
                .hasMessageEndingWith(LinuxCalls.strerror(LinuxCalls.ENOSPC));
        assertThat(target.resolve("huge")).doesNotExist();
    }

    @Test
    void overlayXattrInTheTarIsRefused() {
        assertRefused(TarLayers.layer()
                        .dir("d", 0755, e -> e.addPaxHeader("SCHILY.xattr.trusted.overlay.opaque", "y"))
                        .bytes(),
                "d/", "xattr trusted.overlay.opaque would forge overlay metadata");
    }

    @Test
    void ownerThatChownCannotTakeIsRefused() {
        assertRefused(TarLayers.layer().file("f", "", 0644, e -> e.setUserId(0xFFFF_FFFFL)).bytes(), "f",
                "uid 4294967295 is out of range");
    }

    @Test
    void overlayXattrInARawPaxHeaderIsRefused() {
        byte[] records = TarLayers.paxRecord("SCHILY.xattr.trusted.overlay.redirect", "/elsewhere".getBytes(UTF_8));
        assertRefused(TarLayers.layer().fileWithRawPax("f", "x", 0644, records).bytes(), "f",
                "xattr trusted.overlay.redirect would forge overlay metadata");
    }

    @Test
    void unsupportedEntryTypeIsRefusedByName() {
        assertRefused(TarLayers.layer().typed("weird", (byte) 'Z', e -> {}).bytes(), "weird",
                "unsupported entry type 'Z'");
    }

    @Test
    void truncatedStreamFailsNamingTheEntry() {
        assertRefused(TarLayers.layer().file("a", "x", 0644).truncatedFile("cut", 100_000, new byte[600]).bytes(),
                "cut", "truncated: the layer ends after");
    }

    @Test
    void malformedHeaderIsAnInvalidImage() {
        byte[] garbage = new byte[1024];
        Arrays.fill(garbage, (byte) 'z');
        assertThatThrownBy(() -> unpack(garbage))
                .isInstanceOf(InvalidImageException.class)
                .hasMessageContaining("layer " + LAYER + ": malformed tar header of the first entry");
    }

    /**
     * A PAX record commons-compress cannot parse (a time of 20 digits, NaN, a hex number, an id past a long) failed
     * the layer as an I/O error ({@code UNAVAILABLE}, worth retrying) rather than as the image's: only a header
     * whose parse failure had an {@code IllegalArgumentException} cause was taken for malformed.
     */
    @ParameterizedTest
    @ValueSource(strings = {"mtime=99999999999999999999", "mtime=NaN", "atime=0x10", "gid=99999999999999999999"})
    void aPaxRecordThatDoesNotParseIsAnInvalidImage(String record) {
        int equals = record.indexOf('=');
        byte[] tar = TarLayers.layer().fileWithRawPax("f", "x", 0644, TarLayers.paxRecord(record.substring(0, equals),
                record.substring(equals + 1).getBytes(UTF_8))).bytes();
        assertThatThrownBy(() -> unpack(tar))
                .isInstanceOf(InvalidImageException.class)
                .hasMessageContaining("layer " + LAYER + ": malformed tar header of the first entry");
    }

    @Test
    void deviceNodeWithoutCapMknodFailsWithAClearMessage() throws Exception {
        byte[] tar = TarLayers.layer().charDevice("dev/null", 1, 3, 0666).bytes();
        Throwable failure = ThreadCapabilities.withoutCapability(ThreadCapabilities.CAP_MKNOD, () -> unpack(tar));
        assertThat(failure)
                .isInstanceOf(IOException.class)
                .hasMessageStartingWith("layer " + LAYER + ": entry \"dev/null\": cannot make a device node here")
                .hasMessageContaining("Operation not permitted");
        assertThat(target.resolve("dev/null")).doesNotExist();
    }

    // Exactness.

    /** Times to the nanosecond, as PAX records them. */
    @Test
    void keepsModesOwnersTimesXattrsAndSpecialFiles() throws IOException {
        Instant dirTime = Instant.parse("2020-05-06T07:08:09Z");
        Instant fileTime = Instant.parse("2021-02-03T04:05:06.1234567Z");
        Instant linkTime = Instant.parse("2019-01-01T00:00:01Z");
        Instant rootTime = Instant.parse("2018-03-04T05:06:07Z");
        byte[] tar = TarLayers.layer()
                .dir("./", 0751, e -> {
                    e.setIds(10, 20);
                    e.setLastModifiedTime(FileTime.from(rootTime));
                })
                .dir("bin", 0755)
                .file("bin/su", "suid", 04755)
                .file("bin/wall", "sgid", 02711, e -> e.setIds(0, 5))
                .dir("tmp", 01777)
                .dir("home/u", 0700, e -> {
                    e.setIds(1000, 1000);
                    e.setLastModifiedTime(FileTime.from(dirTime));
                })
                .file("home/u/f", "hello", 0640, e -> {
                    e.setIds(1000, 1001);
                    e.setLastModifiedTime(FileTime.from(fileTime));
                    e.addPaxHeader("SCHILY.xattr.user.k", "v");
                    e.addPaxHeader("SCHILY.xattr.user.second", "two words");
                })
                .file("big-ids", "", 0600, e -> {
                    e.setUserId(3_000_000);
                    e.setGroupId(4_000_000);
                })
                .symlink("lnk", "bin/su", e -> {
                    e.setIds(5, 6);
                    e.setLastModifiedTime(FileTime.from(linkTime));
                })
                .symlink("dangling", "/no/such/target")
                .hardLink("hard", "bin/su")
                .charDevice("dev/null", 1, 3, 0666)
                .blockDevice("dev/sda", 8, 0, 0660)
                .fifo("pipe", 0600)
                .bytes();

        LayerContents contents = unpack(tar);

        assertThat(contents).isEqualTo(new LayerContents("suid".length() + "sgid".length() + "hello".length(), 14));
        assertThat(mode(target)).isEqualTo(0751);
        assertThat(owner(target)).isEqualTo("10:20");
        assertThat(mtime(target)).isEqualTo(rootTime);
        assertThat(mode(target.resolve("bin/su"))).isEqualTo(04755);
        assertThat(mode(target.resolve("bin/wall"))).isEqualTo(02711);
        assertThat(owner(target.resolve("bin/wall"))).isEqualTo("0:5");
        assertThat(mode(target.resolve("tmp"))).isEqualTo(01777);
        assertThat(mode(target.resolve("home"))).isEqualTo(0755);
        assertThat(mode(target.resolve("home/u"))).isEqualTo(0700);
        assertThat(owner(target.resolve("home/u"))).isEqualTo("1000:1000");
        // Set after home/u/f was made in it.
        assertThat(mtime(target.resolve("home/u"))).isEqualTo(dirTime);
        Path file = target.resolve("home/u/f");
        assertThat(Files.readString(file)).isEqualTo("hello");
        assertThat(mode(file)).isEqualTo(0640);
        assertThat(owner(file)).isEqualTo("1000:1001");
        assertThat(mtime(file)).isEqualTo(fileTime);
        assertThat(userXattr(file, "k")).isEqualTo("v");
        assertThat(userXattr(file, "second")).isEqualTo("two words");
        assertThat(owner(target.resolve("big-ids"))).isEqualTo("3000000:4000000");
        Path link = target.resolve("lnk");
        assertThat(Files.isSymbolicLink(link)).isTrue();
        assertThat(Files.readSymbolicLink(link)).hasToString("bin/su");
        assertThat(owner(link)).isEqualTo("5:6");
        assertThat(mtime(link)).isEqualTo(linkTime);
        assertThat(Files.readSymbolicLink(target.resolve("dangling"))).hasToString("/no/such/target");
        assertThat(attribute(target.resolve("hard"), "ino")).isEqualTo(attribute(target.resolve("bin/su"), "ino"));
        assertThat(attribute(target.resolve("bin/su"), "nlink")).isEqualTo(2);
        assertThat(type(target.resolve("dev/null"))).isEqualTo(LinuxCalls.S_IFCHR);
        assertThat(attribute(target.resolve("dev/null"), "rdev")).isEqualTo(LinuxCalls.makedev(1, 3));
        assertThat(mode(target.resolve("dev/null"))).isEqualTo(0666);
        assertThat(type(target.resolve("dev/sda"))).isEqualTo(LinuxCalls.S_IFBLK);
        assertThat(attribute(target.resolve("dev/sda"), "rdev")).isEqualTo(LinuxCalls.makedev(8, 0));
        assertThat(type(target.resolve("pipe"))).isEqualTo(LinuxCalls.S_IFIFO);
        assertThat(mode(target.resolve("pipe"))).isEqualTo(0600);
    }

    @Test
    void whiteoutsBecomeOverlayWhiteoutsAndOpaqueDirectories() throws IOException {
        byte[] tar = TarLayers.layer()
                .dir("etc", 0755)
                .file("etc/.wh.passwd", "", 0644)
                .file("opq/.wh..wh..opq", "", 0644)
                .file("opq/kept", "k", 0644)
                .file(".wh..wh.plnk.1234", "", 0644)
                .bytes();

        LayerContents contents = unpack(tar);

        Path whiteout = target.resolve("etc/passwd");
        assertThat(type(whiteout)).isEqualTo(LinuxCalls.S_IFCHR);
        assertThat(attribute(whiteout, "rdev")).isEqualTo(0L);
        assertThat(target.resolve("etc/.wh.passwd")).doesNotExist();
        assertThat(LinuxCalls.lgetxattr(target.resolve("opq"), LayerUnpacker.OPAQUE_XATTR))
                .isEqualTo("y".getBytes(UTF_8));
        assertThat(target.resolve("opq/.wh..wh..opq")).doesNotExist();
        assertThat(Files.readString(target.resolve("opq/kept"))).isEqualTo("k");
        try (Stream<Path> top = Files.list(target)) {
            assertThat(top.map(p -> p.getFileName().toString())).containsExactlyInAnyOrder("etc", "opq");
        }
        assertThat(contents.entries()).isEqualTo(5);
    }

    @Test
    void laterEntriesReplaceEarlierOnesNeverFollowingSymlinks() throws IOException {
        byte[] tar = TarLayers.layer()
                .file("a", "first", 0644)
                .file("a", "second", 0600)
                .dir("d", 0755)
                .file("d/x", "x", 0644)
                .dir("d", 0700)
                .dir("e", 0755)
                .file("e/y", "y", 0644)
                .file("e", "now a file", 0644)
                .file("f", "was a file", 0644)
                .dir("f", 0755)
                .symlink("s", sentinel.toString())
                .file("s", "replaces the link", 0644)
                .symlink("t", "/")
                .dir("t", 0755)
                .file("t/inside", "i", 0644)
                .file("g", "old", 0644)
                .hardLink("g2", "g")
                .file("g", "new", 0644)
                .bytes();

        unpack(tar);

        assertThat(Files.readString(target.resolve("a"))).isEqualTo("second");
        assertThat(mode(target.resolve("a"))).isEqualTo(0600);
        assertThat(Files.readString(target.resolve("d/x"))).isEqualTo("x");
        assertThat(mode(target.resolve("d"))).isEqualTo(0700);
        assertThat(Files.readString(target.resolve("e"))).isEqualTo("now a file");
        assertThat(Files.isDirectory(target.resolve("f"), NOFOLLOW)).isTrue();
        assertThat(Files.isRegularFile(target.resolve("s"), NOFOLLOW)).isTrue();
        assertThat(Files.readString(target.resolve("s"))).isEqualTo("replaces the link");
        assertThat(Files.isDirectory(target.resolve("t"), NOFOLLOW)).isTrue();
        assertThat(Files.readString(target.resolve("t/inside"))).isEqualTo("i");
        assertThat(Files.readString(target.resolve("g"))).isEqualTo("new");
        assertThat(Files.readString(target.resolve("g2"))).isEqualTo("old");
    }

    /** A {@code security.capability} granting {@code cap_setuid} holds 0x80, which is not UTF-8. */
    @Test
    void binaryXattrValuesAreKeptByteForByte() throws IOException {
        byte[] binary = {0x01, 0x00, 0x00, 0x02, (byte) 0x80, 0x00, 0x00, 0x00, (byte) 0xff, 0x7f};
        byte[] records = TarLayers.concat(TarLayers.paxRecord("SCHILY.xattr.user.bin", binary),
                TarLayers.paxRecord("SCHILY.xattr.user.text", "plain".getBytes(UTF_8)));

        unpack(TarLayers.layer().fileWithRawPax("f", "content", 0644, records).bytes());

        Path file = target.resolve("f");
        assertThat(Files.readString(file)).isEqualTo("content");
        assertThat(userXattrBytes(file, "bin")).isEqualTo(binary);
        assertThat(userXattr(file, "text")).isEqualTo("plain");
    }

    @Test
    void anOldTarsRegularEntryEndingInASlashIsADirectory() throws IOException {
        unpack(TarLayers.layer().typed("old/", TarConstants.LF_OLDNORM, e -> e.setMode(0750)).bytes());

        assertThat(Files.isDirectory(target.resolve("old"), NOFOLLOW)).isTrue();
        assertThat(mode(target.resolve("old"))).isEqualTo(0750);
    }

    @Test
    void readsTheStreamToItsEndPaddingIncluded() throws IOException {
        byte[] tar = TarLayers.layer().file("a", "x", 0644).bytes();
        byte[] padded = Arrays.copyOf(tar, tar.length + 20 * 512);
        InputStream stream = new ByteArrayInputStream(padded);

        LayerUnpacker.unpack(stream, target, LAYER);

        assertThat(stream.read()).isEqualTo(-1);
    }

    @Test
    void manyFilesInDeepDirectories() throws IOException {
        TarLayers layer = TarLayers.layer();
        int files = 0;
        for (int d = 0; d < 20; d++) {
            for (int f = 0; f < 50; f++) {
                layer.file("usr/share/d" + d + "/sub/f" + f, "content " + d + "/" + f, 0644);
                files++;
            }
        }
        long started = System.nanoTime();

        LayerContents contents = unpack(layer.bytes());

        long millis = (System.nanoTime() - started) / 1_000_000;
        System.out.println("unpacked " + files + " files in " + millis + " ms");
        assertThat(contents.entries()).isEqualTo(files);
        assertThat(Files.readString(target.resolve("usr/share/d19/sub/f49"))).isEqualTo("content 19/49");
    }

    // Review findings: each test failed before its fix.

    /**
     * Nested directories, one an entry, near PATH_MAX: each walk went from the root, joining every prefix, and 3000
     * levels took minutes (cubic). The walk now starts at the directory it opened last.
     */
    @Test
    void deepNestedDirectoriesUnpack() throws Exception {
        TarLayers layer = TarLayers.layer();
        StringBuilder path = new StringBuilder("a");
        layer.dir(path.toString(), 0755);
        for (int i = 1; i < DEEPEST; i++) {
            path.append("/a");
            layer.dir(path.toString(), 0755);
        }
        LayerContents contents = unpack(layer.bytes());

        assertThat(contents.entries()).isEqualTo(DEEPEST);
        assertThat(Files.isDirectory(target.resolve(path.toString()), NOFOLLOW)).isTrue();
        // JUnit's temporary directory cleanup takes minutes on a tree this deep (a path per entry); rm does not.
        Process rm = new ProcessBuilder("rm", "-rf", "--one-file-system", target.resolve("a").toString())
                .inheritIO().start();
        assertThat(rm.waitFor()).as("rm exit status").isZero();
    }

    @Test
    void nameLongerThanPathMaxIsRefused() {
        String name = "a/".repeat(2048) + "b";
        assertRefused(TarLayers.layer().file(name, "x", 0644).bytes(), name,
                "is longer than the 4096 bytes a path can have");
    }

    /** Removing the tree was recursive: on a small stack (as a deep tree on any stack) it overflowed. */
    @Test
    void replacingADeepDirectoryNeedsNoDeepStack() throws Exception {
        String deep = String.join("/", Collections.nCopies(DEEPEST, "a")) + "/f";
        byte[] tar = TarLayers.layer().file(deep, "x", 0644).file("a", "now a file", 0644).bytes();
        Throwable thrown = unpackOnASmallStack(tar);

        assertThat(thrown).isNull();
        assertThat(Files.readString(target.resolve("a"))).isEqualTo("now a file");
    }

    @Test
    void whiteoutOfAnEntryOfTheSameLayerIsRefused() {
        assertRefused(TarLayers.layer().file("x", "keep me", 0644).file(".wh.x", "", 0644).bytes(), ".wh.x",
                "whiteout of an entry of the same layer");
        assertThat(target.resolve("x")).hasContent("keep me");
    }

    @Test
    void whiteoutOfADirectoryOfTheSameLayerIsRefused() {
        assertRefused(TarLayers.layer().dir("d", 0755).file("d/y", "keep", 0644).file(".wh.d", "", 0644).bytes(),
                ".wh.d", "whiteout of an entry of the same layer");
        assertThat(target.resolve("d/y")).hasContent("keep");
    }

    @Test
    void aWhiteoutRepeatedIsStillOneWhiteout() throws IOException {
        unpack(TarLayers.layer().file(".wh.x", "", 0644).file(".wh.x", "", 0644).bytes());
        assertThat(type(target.resolve("x"))).isEqualTo(LinuxCalls.S_IFCHR);
    }

    @Test
    void aWhiteoutOfAFileThatReplacedAWhiteoutIsRefused() {
        assertRefused(TarLayers.layer().file(".wh.x", "", 0644).file("x", "back", 0644).file(".wh.x", "", 0644)
                .bytes(), ".wh.x", "whiteout of an entry of the same layer");
    }

    @Test
    void nameComponentLongerThanNameMaxIsRefused() {
        String name = "d/" + "x".repeat(256);
        assertRefused(TarLayers.layer().file(name, "x", 0644).bytes(), name,
                "has a component of 256 bytes, more than the 255 a file name can have");
    }

    @Test
    void xattrNameLongerThanTheKernelTakesIsRefused() {
        String xattr = "user." + "n".repeat(251);
        byte[] records = TarLayers.paxRecord("SCHILY.xattr." + xattr, "v".getBytes(UTF_8));
        assertRefused(TarLayers.layer().fileWithRawPax("f", "x", 0644, records).bytes(), "f",
                "xattr name of 256 bytes is more than the 255 Linux takes");
    }

    @Test
    void xattrValueLargerThanTheKernelTakesIsRefused() {
        byte[] records = TarLayers.paxRecord("SCHILY.xattr.user.big", new byte[65537]);
        assertRefused(TarLayers.layer().fileWithRawPax("f", "x", 0644, records).bytes(), "f",
                "xattr user.big of 65537 bytes is more than the 65536 Linux takes");
    }

    @Test
    void paxHeaderLargerThanOneMebibyteIsRefused() {
        byte[] records = TarLayers.paxRecord("comment", new byte[1 << 20]);
        assertRefused(TarLayers.layer().fileWithRawPax("f", "x", 0644, records).bytes(), "PaxHeaders/f",
                "header of " + records.length + " bytes is more than the 1048576 taken");
    }

    @Test
    void gnuLongNameLargerThanOneMebibyteIsRefused() throws IOException {
        byte[] name = new byte[(1 << 20) + 1];
        Arrays.fill(name, (byte) 'n');
        byte[] tar = TarLayers.concat(rawHeader("././@LongLink", TarConstants.LF_GNUTYPE_LONGNAME, name),
                TarLayers.layer().file("f", "x", 0644).bytes());
        assertRefused(tar, "././@LongLink", "header of " + name.length + " bytes is more than the 1048576 taken");
    }

    /**
     * commons-compress reads the entry after a header by calling itself, the header still held: a chain of small
     * headers (a few KiB gzipped) overflowed the stack, and a chain of 1 MiB ones held them all at once.
     */
    @Test
    void aChainOfHeadersBeforeOneEntryIsRefusedAndEightAreTaken() throws Exception {
        byte[] longName = rawHeader("././@LongLink", TarConstants.LF_GNUTYPE_LONGNAME, "f".getBytes(UTF_8));
        byte[] eight = TarLayers.layer().file("f", "x", 0644).bytes();
        for (int i = 0; i < XattrTarInputStream.MAX_HEADERS; i++) {
            eight = TarLayers.concat(longName, eight);
        }
        unpack(eight);
        assertThat(target.resolve("f")).hasContent("x");

        byte[] chain = TarLayers.layer().file("g", "x", 0644).bytes();
        for (int i = 0; i < 2000; i++) {
            chain = TarLayers.concat(longName, chain);
        }
        byte[] tar = chain;
        Throwable thrown = unpackOnASmallStack(tar);

        assertThat(thrown).isInstanceOf(InvalidImageException.class)
                .hasMessageStartingWith("layer " + LAYER + ": entry \"././@LongLink\": ")
                .hasMessageContaining("more than " + XattrTarInputStream.MAX_HEADERS + " headers before one entry");
        assertThat(target.resolve("g")).doesNotExist();
    }

    @Test
    void globalPaxHeaderRenamingEntriesIsRefused() throws IOException {
        byte[] records = TarLayers.paxRecord("path", "../sentinel/g".getBytes(UTF_8));
        byte[] tar = TarLayers.concat(rawHeader("pax_global_header", TarConstants.LF_PAX_GLOBAL_EXTENDED_HEADER,
                records), TarLayers.layer().file("ok", "x", 0644).bytes());
        assertRefused(tar, "pax_global_header", "global PAX header record \"path\" would apply to every later entry");
        assertThat(target.resolve("ok")).doesNotExist();
    }

    @Test
    void globalPaxHeaderOfACommentIsTaken() throws IOException {
        byte[] records = TarLayers.paxRecord("comment", "made by git archive".getBytes(UTF_8));
        byte[] tar = TarLayers.concat(rawHeader("pax_global_header", TarConstants.LF_PAX_GLOBAL_EXTENDED_HEADER,
                records), TarLayers.layer().file("ok", "x", 0644).bytes());

        unpack(tar);

        assertThat(target.resolve("ok")).hasContent("x");
    }

    /** Without CAP_SETFCAP, root gets EPERM setting security.capability: the layer fails, the xattr is not lost. */
    @Test
    void capabilityXattrRefusedByTheKernelFailsTheLayer() throws Exception {
        byte[] capability = {0x00, 0x00, 0x00, 0x02, (byte) 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        byte[] records = TarLayers.paxRecord("SCHILY.xattr.security.capability", capability);
        byte[] tar = TarLayers.layer().fileWithRawPax("bin/ping", "x", 0755, records).bytes();

        Throwable failure = ThreadCapabilities.withoutCapability(CAP_SETFCAP, () -> unpack(tar));

        assertThat(failure)
                .isInstanceOf(IOException.class)
                .hasMessageStartingWith("layer " + LAYER + ": entry \"bin/ping\": ")
                .hasMessageContaining("Operation not permitted");
    }

    /** A tar of one header entry of {@code type} holding {@code content}, without the end-of-archive records. */
    private static byte[] rawHeader(String name, byte type, byte[] content) {
        TarArchiveEntry entry = new TarArchiveEntry(name, type, true);
        entry.setSize(content.length);
        byte[] header = new byte[512];
        entry.writeEntryHeader(header);
        byte[] padded = Arrays.copyOf(content, (content.length + 511) / 512 * 512);
        return TarLayers.concat(header, padded);
    }

    // A parent a layer makes only implicitly (adversarial review: /tmp lost its sticky bit and a home directory its
    // owner in the container, as overlay shows the top layer's 0755 root directory).

    @Test
    void aParentMadeOnlyImplicitlyTakesWhatTheLowerLayersShowForIt() throws IOException {
        Instant tmpTime = Instant.parse("2023-05-06T07:08:09.1234567Z");
        Path bottom = unpackLower("bottom", null, TarLayers.layer().dir("etc", 0750).file("etc/x", "x", 0644)
                .dir("home", 0711).dir("home/u", 0755).bytes());
        Path middle = unpackLower("middle", bottom, TarLayers.layer()
                .dir("tmp", 01777, e -> e.setLastModifiedTime(FileTime.from(tmpTime)))
                .dir("home/u", 0700, e -> {
                    e.setIds(1000, 1001);
                    e.addPaxHeader("SCHILY.xattr.user.k", "v");
                })
                .file("home/u/old", "old", 0600).bytes());

        LayerUnpacker.unpack(new ByteArrayInputStream(TarLayers.layer().file("tmp/foo", "foo", 0644)
                .file("home/u/new", "new", 0644).file("home/u/.wh.old", "", 0644).file("etc/y", "y", 0644).bytes()),
                target, LAYER, List.of(middle, bottom));

        assertThat(mode(target.resolve("tmp"))).isEqualTo(01777);
        assertThat(owner(target.resolve("tmp"))).isEqualTo("0:0");
        assertThat(mtime(target.resolve("tmp"))).isEqualTo(tmpTime);
        assertThat(mode(target.resolve("home/u"))).isEqualTo(0700);
        assertThat(owner(target.resolve("home/u"))).isEqualTo("1000:1001");
        assertThat(userXattr(target.resolve("home/u"), "k")).isEqualTo("v");
        assertThat(mtime(target.resolve("home/u"))).isEqualTo(TarLayers.DEFAULT_MTIME);
        // From the layer below the one below: the middle layer has no home or etc of its own.
        assertThat(mode(target.resolve("home"))).isEqualTo(0711);
        assertThat(mode(target.resolve("etc"))).isEqualTo(0750);
        assertThat(type(target.resolve("home/u/old"))).as("the whiteout").isEqualTo(0020000);
        // An entry for the directory itself still wins over the lower layers.
        Path again = Files.createDirectory(temp.resolve("again"));
        LayerUnpacker.unpack(new ByteArrayInputStream(TarLayers.layer().file("tmp/foo", "foo", 0644)
                .dir("tmp", 0770).bytes()), again, LAYER, List.of(middle, bottom));
        assertThat(mode(again.resolve("tmp"))).isEqualTo(0770);
    }

    @Test
    void aParentTheLowerLayersHideOrHaveAsNoDirectoryIsMade0755AndNothingIsFollowed() throws IOException {
        Files.setPosixFilePermissions(sentinel, PosixFilePermissions.fromString("rwx--x---"));
        Path bottom = unpackLower("bottom", null, TarLayers.layer().dir("gone", 0700).dir("opq", 0700)
                .dir("opq/sub", 0700).dir("link", 0700).dir("plain", 0700).dir("high", 0700)
                .dir("high/sub", 0700).dir("high/sub/deep", 0700).bytes());
        Path middle = unpackLower("middle", bottom, TarLayers.layer().file(".wh.gone", "", 0644)
                .dir("opq", 0750).file("opq/.wh..wh..opq", "", 0644).symlink("link", sentinel.toString())
                .file("plain", "a file", 0600).dir("high", 0750).file("high/.wh..wh..opq", "", 0644)
                .dir("high/sub", 0751).bytes());

        // high/sub/deep: the opaque high/ two levels up hides the bottom layer's, which once showed through.
        LayerUnpacker.unpack(new ByteArrayInputStream(TarLayers.layer().file("gone/f", "f", 0644)
                .file("opq/sub/f", "f", 0644).file("link/f", "f", 0644).file("plain/f", "f", 0644)
                .file("new/f", "f", 0644).file("high/sub/deep/f", "f", 0644).bytes()), target, LAYER,
                List.of(middle, bottom));

        assertThat(mode(target.resolve("high/sub"))).isEqualTo(0751);
        for (String dir : List.of("gone", "opq/sub", "link", "plain", "new", "high/sub/deep")) {
            assertThat(mode(target.resolve(dir))).as(dir).isEqualTo(0755);
            assertThat(owner(target.resolve(dir))).as(dir).isEqualTo("0:0");
        }
        assertThat(mode(target.resolve("opq"))).isEqualTo(0750);
        assertThat(LinuxCalls.lgetxattr(target.resolve("opq"), LayerUnpacker.OPAQUE_XATTR))
                .as("overlay's opaque mark is the lower layer's alone").isNull();
        assertThat(mode(sentinel)).isEqualTo(0710);
    }

    /**
     * A layer whose root is marked opaque (a root-level {@code .wh..wh..opq}) hides nothing below it: overlay never
     * looks the root up. A parent made implicitly above it once took 0755 root, where the container shows the
     * bottom layer's {@code /tmp}, 1777.
     */
    @Test
    void anOpaqueMarkOnALowerLayersRootHidesNothingBelowIt() throws IOException {
        Path bottom = unpackLower("bottom", null, TarLayers.layer().dir("tmp", 01777).bytes());
        Path middle = unpackLower("middle", bottom, TarLayers.layer().file(".wh..wh..opq", "", 0644)
                .file("other", "o", 0644).bytes());

        LayerUnpacker.unpack(new ByteArrayInputStream(TarLayers.layer().file("tmp/f", "f", 0644).bytes()), target,
                LAYER, List.of(middle, bottom));

        assertThat(mode(target.resolve("tmp"))).isEqualTo(01777);
    }

    /**
     * Parents made implicitly side by side, deep down, and on paths that part and meet again: each takes its own
     * lower directory's mode, and no descriptor outlives the unpack. The views of the last path's levels are kept
     * (a sibling once walked every lower from its root), within a bound of descriptors that this depth exceeds.
     */
    @Test
    void parentsMadeImplicitlyBesideEachOtherDeepDownTakeTheirOwnLowerAttributes() throws IOException {
        String deep = "a/".repeat(150);
        List<Path> lowers = new ArrayList<>();
        for (int layer = 0; layer < 3; layer++) {
            TarLayers lower = TarLayers.layer();
            for (int i = 0; i < 10; i++) {
                if (i % 3 == layer) {
                    lower.dir(deep + "x" + i, 0700 | i);
                }
            }
            lower.dir("b/y", 0750 + layer).dir("c", 0710 + layer);
            lowers.addFirst(unpackLower("lower" + layer, lowers.isEmpty() ? null : lowers.getFirst(), lower.bytes()));
        }
        long descriptors = openDescriptors();

        TarLayers top = TarLayers.layer();
        for (int i = 0; i < 10; i++) {
            top.file(deep + "x" + i + "/f", "f", 0644);
        }
        top.file("b/y/f", "f", 0644).file(deep + "x0/g", "g", 0644).file("c/f", "f", 0644);
        LayerUnpacker.unpack(new ByteArrayInputStream(top.bytes()), target, LAYER, lowers);

        for (int i = 0; i < 10; i++) {
            assertThat(mode(target.resolve(deep + "x" + i))).as("x" + i).isEqualTo(0700 | i);
        }
        // The topmost lower with the path wins: the last one unpacked, lower2.
        assertThat(mode(target.resolve("b/y"))).isEqualTo(0752);
        assertThat(mode(target.resolve("c"))).isEqualTo(0712);
        assertThat(openDescriptors()).isEqualTo(descriptors);
    }

    private static long openDescriptors() throws IOException {
        try (Stream<Path> open = Files.list(Path.of("/proc/self/fd"))) {
            return open.count();
        }
    }

    /** Unpacks {@code tar} into a new directory {@code name} over {@code lower} (or nothing); returns it. */
    private Path unpackLower(String name, Path lower, byte[] tar) throws IOException {
        Path dir = Files.createDirectory(temp.resolve(name));
        LayerUnpacker.unpack(new ByteArrayInputStream(tar), dir, LAYER, lower == null ? List.of() : List.of(lower));
        return dir;
    }

    /** The size feeds the free-space check before an import: a file replaced in its layer counted twice. */
    @Test
    void aFileReplacedOrRemovedWithinItsLayerCountsOnlyWhatIsLeft() throws IOException {
        byte[] tar = TarLayers.layer()
                .file("f", "12345", 0644)
                .file("f", "123", 0644)
                .file("d/a", "1234", 0644)
                .file("d/b", "12", 0644)
                .file("d", "1", 0644)
                .file("old", "1234567890", 0644)
                .hardLink("kept", "old")
                .file("old", "12", 0644)
                .file("both", "123456", 0644)
                .hardLink("other", "both")
                .symlink("both", "f")
                .symlink("other", "f")
                .bytes();

        LayerContents contents = unpack(tar);

        // f's 3, d's 1, kept's 10 (old's first file, still linked), old's new 2; both's 6 gone with its two names.
        assertThat(contents.bytes()).isEqualTo(3 + 1 + 10 + 2);
        assertThat(Files.readString(target.resolve("kept"))).isEqualTo("1234567890");
        assertThat(Files.size(target.resolve("d"))).isEqualTo(1);
    }

    /**
     * A directory replaced within its layer gives back exactly the bytes of what was below it: files are kept
     * sorted as a tree, a replaced directory's a range of them, and a sibling whose name extends the directory's
     * ("d!", "d0", "dd") or sorts between its entries is not part of that range.
     */
    @Test
    void aDirectoryReplacedWithinItsLayerGivesBackOnlyWhatWasBelowIt() throws IOException {
        byte[] tar = TarLayers.layer()
                .file("d!", "1", 0644)
                .file("d/a", "1234", 0644)
                .file("d/sub/b", "12", 0644)
                .file("d/sub/c", "123", 0644)
                .file("d0", "12", 0644)
                .file("dd/x", "123", 0644)
                .file("d.txt", "1234", 0644)
                .file("d/sub", "12345", 0644)
                .file("c", "123456", 0644)
                .file("d", "1234567", 0644)
                .bytes();

        LayerContents contents = unpack(tar);

        // d!, d0, dd/x, d.txt, c, and d the file; d/a and d/sub (each file in turn) gone with d.
        assertThat(contents.bytes()).isEqualTo(1 + 2 + 3 + 4 + 6 + 7);
        assertThat(Files.size(target.resolve("d"))).isEqualTo(7);
        assertThat(Files.readString(target.resolve("dd/x"))).isEqualTo("123");
    }

    /**
     * A directory replaced within its layer takes its subtree's times with it, and only its: the times are kept
     * sorted as a tree, the replaced directory's a range of them (a scan of them all per replaced directory cost a
     * layer of many replacing entries the square of them), and a sibling whose name extends the directory's or
     * sorts between its entries keeps its own.
     */
    @Test
    void aDirectoryReplacedWithinItsLayerTakesOnlyItsSubtreesTimes() throws IOException {
        Instant time = Instant.parse("2001-02-03T04:05:06Z");
        byte[] tar = TarLayers.layer()
                .dir("d", 0755, e -> e.setLastModifiedTime(FileTime.from(time)))
                .dir("d/sub", 0755, e -> e.setLastModifiedTime(FileTime.from(time)))
                .dir("d/sub/deep", 0755, e -> e.setLastModifiedTime(FileTime.from(time)))
                .dir("d!", 0755, e -> e.setLastModifiedTime(FileTime.from(time.plusSeconds(1))))
                .dir("d0", 0755, e -> e.setLastModifiedTime(FileTime.from(time.plusSeconds(2))))
                .dir("dd", 0755, e -> e.setLastModifiedTime(FileTime.from(time.plusSeconds(3))))
                .dir("d.x", 0755, e -> e.setLastModifiedTime(FileTime.from(time.plusSeconds(4))))
                .file("d", "file", 0644)
                .dir("e", 0755, e -> e.setLastModifiedTime(FileTime.from(time)))
                .dir("e/sub", 0755, e -> e.setLastModifiedTime(FileTime.from(time)))
                .dir("e/sub2", 0755, e -> e.setLastModifiedTime(FileTime.from(time.plusSeconds(5))))
                .file("e/sub", "file", 0644)
                .bytes();

        unpack(tar);

        assertThat(Files.readString(target.resolve("d"))).isEqualTo("file");
        assertThat(mtime(target.resolve("d!"))).isEqualTo(time.plusSeconds(1));
        assertThat(mtime(target.resolve("d0"))).isEqualTo(time.plusSeconds(2));
        assertThat(mtime(target.resolve("dd"))).isEqualTo(time.plusSeconds(3));
        assertThat(mtime(target.resolve("d.x"))).isEqualTo(time.plusSeconds(4));
        assertThat(mtime(target.resolve("e/sub2"))).isEqualTo(time.plusSeconds(5));
        assertThat(mtime(target.resolve("e"))).isEqualTo(time);
    }

    /** What unpacking {@code tar} on a thread of a small stack threw; null if nothing. */
    private Throwable unpackOnASmallStack(byte[] tar) throws InterruptedException {
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        Thread small = new Thread(null, () -> {
            try {
                unpack(tar);
            } catch (Throwable t) {
                thrown.set(t);
            }
        }, "small-stack", SMALL_STACK);
        small.start();
        small.join();
        return thrown.get();
    }

    private LayerContents unpack(byte[] tar) throws IOException {
        return LayerUnpacker.unpack(new ByteArrayInputStream(tar), target, LAYER);
    }

    private void assertRefused(byte[] tar, String entry, String reason) {
        assertThatThrownBy(() -> unpack(tar))
                .isInstanceOf(InvalidImageException.class)
                .hasMessageStartingWith("layer " + LAYER + ": entry \"" + entry + "\": ")
                .hasMessageContaining(reason);
    }

    private static int mode(Path path) throws IOException {
        return (int) Files.getAttribute(path, "unix:mode", NOFOLLOW) & 07777;
    }

    private static int type(Path path) throws IOException {
        return (int) Files.getAttribute(path, "unix:mode", NOFOLLOW) & 0170000;
    }

    private static String owner(Path path) throws IOException {
        return Files.getAttribute(path, "unix:uid", NOFOLLOW) + ":" + Files.getAttribute(path, "unix:gid", NOFOLLOW);
    }

    private static Instant mtime(Path path) throws IOException {
        return Files.getLastModifiedTime(path, NOFOLLOW).toInstant();
    }

    private static Object attribute(Path path, String name) throws IOException {
        return Files.getAttribute(path, "unix:" + name, NOFOLLOW);
    }

    private static String userXattr(Path path, String name) throws IOException {
        return new String(userXattrBytes(path, name), UTF_8);
    }

    private static byte[] userXattrBytes(Path path, String name) throws IOException {
        UserDefinedFileAttributeView view = Files.getFileAttributeView(path, UserDefinedFileAttributeView.class);
        ByteBuffer value = ByteBuffer.allocate(view.size(name));
        view.read(name, value);
        return value.array();
    }
}
