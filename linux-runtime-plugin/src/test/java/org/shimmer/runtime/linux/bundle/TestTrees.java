package org.shimmer.runtime.linux.bundle;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.MountTable;

/** User trees to guard, their fingerprints, and mounts the tests make and must undo. */
final class TestTrees {

    private TestTrees() {}

    /** A user directory with nested files, an empty directory, a symlink and a name with a space. */
    static Path userTree(Path dir) throws IOException {
        Files.createDirectories(dir.resolve("docs/deep/er"));
        Files.createDirectories(dir.resolve("empty dir"));
        for (int i = 0; i < 10; i++) {
            Files.writeString(dir.resolve("file-" + i + ".txt"), "precious " + i);
            Files.writeString(dir.resolve("docs/deep/er/note " + i), "note " + i);
        }
        Files.write(dir.resolve("docs/blob.bin"), new byte[64 * 1024]);
        Files.createSymbolicLink(dir.resolve("docs/link"), Path.of("../file-0.txt"));
        return dir;
    }

    /** Every entry's relative name with what it is: a file's SHA-256, a link's target, or "dir". */
    static Map<String, String> fingerprint(Path root) throws IOException {
        Map<String, String> entries = new TreeMap<>();
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path path : walk.toList()) {
                String name = root.relativize(path).toString();
                if (Files.isSymbolicLink(path)) {
                    entries.put(name, "-> " + Files.readSymbolicLink(path));
                } else if (Files.isDirectory(path, LinkOption.NOFOLLOW_LINKS)) {
                    entries.put(name, "dir");
                } else {
                    entries.put(name, sha256(Files.readAllBytes(path)));
                }
            }
        }
        return entries;
    }

    static void bind(Path source, Path target, boolean readOnly) throws IOException {
        LinuxCalls.mount(source.toString(), target.toString(), null, LinuxCalls.MS_BIND | LinuxCalls.MS_REC, null);
        if (readOnly) {
            LinuxCalls.mount(null, target.toString(), null,
                    LinuxCalls.MS_BIND | LinuxCalls.MS_REMOUNT | LinuxCalls.MS_RDONLY, null);
        }
    }

    static void tmpfs(Path target, String options) throws IOException {
        LinuxCalls.mount("tmpfs", target.toString(), "tmpfs", 0, options);
    }

    /** Unmounts everything at or under {@code dir}, deepest first. */
    static void unmountAllUnder(Path dir) throws IOException {
        List<Path> points = mountsUnder(dir);
        for (Path point : points.reversed()) {
            LinuxCalls.umount2(point.toString(), LinuxCalls.MNT_DETACH);
        }
    }

    /** The mount points at or under {@code dir}. */
    static List<Path> mountsUnder(Path dir) throws IOException {
        return MountTable.atOrUnder(MountTable.mountPoints(), dir.toRealPath()).stream()
                .map(point -> Path.of(point.toString()))
                .toList();
    }

    static void assertNoMountsUnder(Path dir) throws IOException {
        assertThat(mountsUnder(dir)).as("mounts left under " + dir).isEmpty();
    }

    /** This JVM's open descriptors on anything at or under {@code dir}, as "fd -> path". */
    static List<String> openDescriptorsUnder(Path dir) throws IOException {
        String prefix = dir.toRealPath().toString();
        List<String> open = new ArrayList<>();
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            for (Path fd : fds.toList()) {
                try {
                    String target = Files.readSymbolicLink(fd).toString();
                    if (target.equals(prefix) || target.startsWith(prefix + "/")) {
                        open.add(fd.getFileName() + " -> " + target);
                    }
                } catch (IOException closedMeanwhile) {
                    // The listing's own descriptor, or one another thread closed since.
                }
            }
        }
        return open;
    }

    static void assertNoDescriptorsUnder(Path dir) throws IOException {
        assertThat(openDescriptorsUnder(dir)).as("descriptors left open under " + dir).isEmpty();
    }

    /**
     * What every delete test ends with: no mount and no descriptor left under {@code temp}, the user's tree as it
     * was; whatever fails, every mount under {@code temp} is undone.
     */
    static void assertNothingLeftUnder(Path temp, Path userDir, Map<String, String> userBefore) throws IOException {
        try {
            assertNoMountsUnder(temp);
            assertNoDescriptorsUnder(temp);
            assertThat(fingerprint(userDir)).as("the user's tree").isEqualTo(userBefore);
        } finally {
            unmountAllUnder(temp);
        }
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
