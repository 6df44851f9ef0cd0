package org.shimmer.runtime.linux.sys;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * The mount points of this process's mount namespace, from {@code /proc/self/mountinfo}.
 *
 * <p>The mount point is the fifth field of a line; the kernel escapes space, tab, newline and backslash in it as
 * three-digit octal ({@code \040}), so a directory named {@code "my dir"} reads {@code my\040dir}. Mount points
 * stay bytes and are compared as bytes: under an ASCII locale (a service started without {@code LANG}) the JDK
 * cannot make a {@link Path} of a name such as {@code /media/Clé}, and one such mount anywhere on the machine
 * made every bundle delete fail with an unchecked {@code InvalidPathException}.
 */
public final class MountTable {

    public static final Path MOUNTINFO = Path.of("/proc/self/mountinfo");
    private static final int MOUNT_POINT_FIELD = 4;

    private MountTable() {}

    /** Every mount point now, in the order of {@code mountinfo}. */
    public static List<MountPoint> mountPoints() throws IOException {
        return parse(Files.readAllBytes(MOUNTINFO));
    }

    /** The mount points of {@code mountinfo} text. */
    public static List<MountPoint> parse(byte[] mountinfo) {
        List<MountPoint> points = new ArrayList<>();
        int lineStart = 0;
        while (lineStart < mountinfo.length) {
            int lineEnd = indexOf(mountinfo, (byte) '\n', lineStart, mountinfo.length);
            int fieldStart = lineStart;
            for (int field = 0; field < MOUNT_POINT_FIELD && fieldStart < lineEnd; field++) {
                fieldStart = indexOf(mountinfo, (byte) ' ', fieldStart, lineEnd) + 1;
            }
            if (fieldStart < lineEnd) {
                int fieldEnd = indexOf(mountinfo, (byte) ' ', fieldStart, lineEnd);
                points.add(new MountPoint(unescape(mountinfo, fieldStart, fieldEnd)));
            }
            lineStart = lineEnd + 1;
        }
        return points;
    }

    /** The mount points equal to {@code dir} or below it; {@code dir} must be absolute and free of symlinks. */
    public static List<MountPoint> atOrUnder(List<MountPoint> mountPoints, Path dir) {
        byte[] name = bytes(dir);
        return mountPoints.stream().filter(point -> point.isAtOrUnder(name)).toList();
    }

    /**
     * The mount points now at or under any of {@code dirs}, shallowest first (reversed, an unmount order). Only
     * these become paths: a name the JDK cannot decode elsewhere on the machine cannot break the caller.
     */
    public static List<Path> under(List<Path> dirs) throws IOException {
        List<MountPoint> all = mountPoints();
        List<Path> found = new ArrayList<>();
        for (Path dir : dirs) {
            for (MountPoint point : atOrUnder(all, dir)) {
                found.add(point.path());
            }
        }
        found.sort(Comparator.comparingInt(Path::getNameCount));
        return found;
    }

    private static byte[] bytes(Path path) {
        return path.toString().getBytes(LinuxCalls.FILE_NAMES);
    }

    /** One mount point, named by the kernel's bytes; {@link #toString} shows it for messages. */
    public record MountPoint(byte[] name) {

        /** Whether this is {@code dir} or below it; whole names only, so {@code /ab} is not under {@code /a}. */
        public boolean isAtOrUnder(byte[] dir) {
            if (name.length < dir.length || !Arrays.equals(name, 0, dir.length, dir, 0, dir.length)) {
                return false;
            }
            return name.length == dir.length || dir[dir.length - 1] == '/' || name[dir.length] == '/';
        }

        /** The name of the entry of {@code dir} this is at or under; empty when this is {@code dir} itself. */
        public String firstNameBelow(Path dir) {
            int start = bytes(dir).length;
            if (start < name.length && name[start] == '/') {
                start++;
            }
            int end = start;
            while (end < name.length && name[end] != '/') {
                end++;
            }
            return new String(name, start, end - start, LinuxCalls.FILE_NAMES);
        }

        /** This mount point as a path. */
        public Path path() {
            return Path.of(new String(name, LinuxCalls.FILE_NAMES));
        }

        @Override
        public String toString() {
            return LinuxCalls.display(name);
        }
    }

    private static byte[] unescape(byte[] text, int from, int to) {
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
        return name.toByteArray();
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
