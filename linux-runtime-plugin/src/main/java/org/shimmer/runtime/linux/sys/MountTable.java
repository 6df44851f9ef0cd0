package org.shimmer.runtime.linux.sys;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The mount points of this process's mount namespace, from {@code /proc/self/mountinfo}.
 *
 * <p>The mount point is the fifth field of a line; the kernel escapes space, tab, newline and backslash in it as
 * three-digit octal ({@code \040}), so a directory named {@code "my dir"} reads {@code my\040dir}. Unescaping
 * works on bytes, then decodes with the JDK's file name charset, so a name matches the {@link Path} it is.
 */
public final class MountTable {

    public static final Path MOUNTINFO = Path.of("/proc/self/mountinfo");
    private static final int MOUNT_POINT_FIELD = 4;

    private MountTable() {}

    /** Every mount point now, in the order of {@code mountinfo}. */
    public static List<Path> mountPoints() throws IOException {
        return parse(Files.readAllBytes(MOUNTINFO));
    }

    /** The mount points of {@code mountinfo} text. */
    public static List<Path> parse(byte[] mountinfo) {
        List<Path> points = new ArrayList<>();
        int lineStart = 0;
        while (lineStart < mountinfo.length) {
            int lineEnd = indexOf(mountinfo, (byte) '\n', lineStart, mountinfo.length);
            int fieldStart = lineStart;
            for (int field = 0; field < MOUNT_POINT_FIELD && fieldStart < lineEnd; field++) {
                fieldStart = indexOf(mountinfo, (byte) ' ', fieldStart, lineEnd) + 1;
            }
            if (fieldStart < lineEnd) {
                int fieldEnd = indexOf(mountinfo, (byte) ' ', fieldStart, lineEnd);
                points.add(Path.of(unescape(mountinfo, fieldStart, fieldEnd)));
            }
            lineStart = lineEnd + 1;
        }
        return points;
    }

    /** The mount points equal to {@code dir} or below it; {@code dir} must be absolute and free of symlinks. */
    public static List<Path> atOrUnder(List<Path> mountPoints, Path dir) {
        return mountPoints.stream().filter(point -> point.startsWith(dir)).toList();
    }

    /** The mount points now at or under any of {@code dirs}, shallowest first (so reversed, an unmount order). */
    public static List<Path> under(List<Path> dirs) throws IOException {
        List<Path> found = new ArrayList<>();
        for (Path point : mountPoints()) {
            if (dirs.stream().anyMatch(point::startsWith)) {
                found.add(point);
            }
        }
        found.sort(Comparator.comparingInt(Path::getNameCount));
        return found;
    }

    private static String unescape(byte[] text, int from, int to) {
        ByteArrayOutputStream name = new ByteArrayOutputStream(to - from);
        for (int i = from; i < to; i++) {
            if (text[i] == '\\' && i + 3 < to && isOctal(text[i + 1]) && isOctal(text[i + 2])
                    && isOctal(text[i + 3])) {
                name.write(((text[i + 1] - '0') << 6) | ((text[i + 2] - '0') << 3) | (text[i + 3] - '0'));
                i += 3;
            } else {
                name.write(text[i]);
            }
        }
        return name.toString(LinuxCalls.FILE_NAMES);
    }

    private static boolean isOctal(byte b) {
        return b >= '0' && b <= '7';
    }

    private static int indexOf(byte[] text, byte wanted, int from, int to) {
        for (int i = from; i < to; i++) {
            if (text[i] == wanted) {
                return i;
            }
        }
        return to;
    }
}
