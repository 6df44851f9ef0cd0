package org.shimmer.runtime.linux.runc;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/**
 * Whether runc calls a container paused, read as runc reads it ({@code isPaused}): its freezer cgroup from
 * {@code cgroup_paths} in {@code state.json}, {@code freezer.state} on cgroup v1 (FROZEN, or FREEZING on the way),
 * {@code cgroup.freeze} of the unified cgroup on v2. runc keeps no paused flag of its own, so a runtime that finds
 * a container after a reload must look there.
 */
final class FrozenState {

    private static final Path CGROUPS = Path.of("/sys/fs/cgroup");

    private FrozenState() {}

    /** Whether the cgroup named by {@code state} (runc's {@code state.json}) is frozen; false if it names none. */
    static boolean frozen(JsonNode state) throws IOException {
        JsonNode paths = state.path("cgroup_paths");
        Path v1 = cgroup(paths.path("freezer"));
        if (v1 != null) {
            String freezer = read(v1.resolve("freezer.state"));
            return freezer.equals("FROZEN") || freezer.equals("FREEZING");
        }
        Path unified = cgroup(paths.path(""));
        return unified != null && read(unified.resolve("cgroup.freeze")).equals("1");
    }

    /** The cgroup directory {@code path} names, only under {@code /sys/fs/cgroup}; null otherwise. */
    private static Path cgroup(JsonNode path) {
        if (!path.isTextual()) {
            return null;
        }
        Path dir = Path.of(path.asText()).normalize();
        return dir.isAbsolute() && dir.startsWith(CGROUPS) && Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)
                ? dir : null;
    }

    private static String read(Path file) throws IOException {
        return Files.readString(file, StandardCharsets.US_ASCII).strip();
    }
}
