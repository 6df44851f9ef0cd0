package org.shimmer.runtime.linux.cleanup;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Mount points under given directories, from {@code /proc/self/mountinfo}. (Task A's bundle package parses
 * mountinfo for the delete refusal; this minimal reader serves inspection and forced cleanup.)
 */
final class MountPoints {

    private static final Path MOUNTINFO = Path.of("/proc/self/mountinfo");

    private MountPoints() {}

    /** Mount points at or under any of {@code dirs}, shallowest first. */
    static List<Path> under(List<Path> dirs) throws IOException {
        List<Path> found = new ArrayList<>();
        for (String line : Files.readAllLines(MOUNTINFO)) {
            String[] fields = line.split(" ");
            if (fields.length < 5) {
                continue;
            }
            Path mountPoint = Path.of(unescape(fields[4]));
            for (Path dir : dirs) {
                if (mountPoint.startsWith(dir)) {
                    found.add(mountPoint);
                    break;
                }
            }
        }
        found.sort(Comparator.comparingInt(Path::getNameCount));
        return found;
    }

    /** The kernel writes space, tab, newline and backslash in a mount point as three octal digits after a '\'. */
    static String unescape(String field) {
        StringBuilder out = new StringBuilder(field.length());
        for (int i = 0; i < field.length(); i++) {
            char c = field.charAt(i);
            if (c == '\\' && isOctal(field, i + 1)) {
                out.append((char) Integer.parseInt(field.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    private static boolean isOctal(String field, int from) {
        if (from + 3 > field.length()) {
            return false;
        }
        for (int i = from; i < from + 3; i++) {
            if (field.charAt(i) < '0' || field.charAt(i) > '7') {
                return false;
            }
        }
        return true;
    }
}
