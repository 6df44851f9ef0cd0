package org.shimmer.runtime.linux.container;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.shimmer.runtime.linux.sys.LinuxCalls;

/**
 * A digest of everything a directory tree holds that a write through an overlay could change: each entry's
 * name, type, mode, link count (a hard link made to a file in a lower changes nothing else of it), owner, size,
 * device number, modification and change times, extended attributes, and the bytes of a file or the target of a
 * link. Two digests are equal only if nothing of that changed.
 */
final class TreeDigest {

    private TreeDigest() {}

    static String of(Path root) throws IOException {
        MessageDigest digest = sha256();
        List<Path> entries;
        try (Stream<Path> walk = Files.walk(root)) {
            entries = walk.sorted().toList();
        }
        for (Path entry : entries) {
            Map<String, Object> unix = Files.readAttributes(entry,
                    "unix:mode,nlink,uid,gid,size,rdev,lastModifiedTime,ctime", LinkOption.NOFOLLOW_LINKS);
            StringBuilder line = new StringBuilder(root.relativize(entry).toString());
            line.append('|').append(Integer.toOctalString((Integer) unix.get("mode")))
                    .append('|').append(unix.get("nlink"))
                    .append('|').append(unix.get("uid")).append(':').append(unix.get("gid"))
                    .append('|').append(unix.get("size"))
                    .append('|').append(unix.get("rdev"))
                    .append('|').append(((FileTime) unix.get("lastModifiedTime")).toInstant())
                    .append('|').append(((FileTime) unix.get("ctime")).toInstant());
            for (String name : LinuxCalls.llistxattr(entry).stream().sorted().toList()) {
                line.append('|').append(name).append('=')
                        .append(HexFormat.of().formatHex(LinuxCalls.lgetxattr(entry, name)));
            }
            if (Files.isSymbolicLink(entry)) {
                line.append("|->").append(Files.readSymbolicLink(entry));
            } else if (Files.isRegularFile(entry, LinkOption.NOFOLLOW_LINKS)) {
                MessageDigest content = sha256();
                try (InputStream in = Files.newInputStream(entry, LinkOption.NOFOLLOW_LINKS)) {
                    byte[] buffer = new byte[64 * 1024];
                    for (int read = in.read(buffer); read >= 0; read = in.read(buffer)) {
                        content.update(buffer, 0, read);
                    }
                }
                line.append('|').append(HexFormat.of().formatHex(content.digest()));
            }
            digest.update(line.append('\n').toString().getBytes(LinuxCalls.FILE_NAMES));
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }
}
