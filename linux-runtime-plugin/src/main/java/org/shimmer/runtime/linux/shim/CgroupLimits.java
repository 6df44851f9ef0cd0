package org.shimmer.runtime.linux.shim;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.shimmer.runtime.linux.bundle.Specs;

/**
 * The cgroup v1 limits an update touches, read before it from the container's cgroups so that a refused update
 * can put them back.
 *
 * <p>runc applies an update controller by controller (cgroup v1: cpuset, memory, cpu, pids, blkio) and, when the
 * kernel refuses a value, sets back the limits the container was created with, but not one it was created without:
 * an update of {@code cpu.cpus} with a memory limit below the usage failed and left the new cpuset. On cgroup v2,
 * or when the process's cgroups cannot be read, nothing is read and nothing put back; a file this kernel lacks is
 * left out.
 */
final class CgroupLimits {

    private static final Path CGROUPS = Path.of("/sys/fs/cgroup");
    // The kernel's "unlimited" memory limit, LONG_MAX rounded down to a page: written back as -1.
    private static final long UNLIMITED_MEMORY = Long.MAX_VALUE & ~4095L;

    /** Each update field runc writes to one cgroup v1 file: section, name, file. */
    private static final List<String[]> FILES = List.of(
            new String[] {"cpu", "cpus", "cpuset.cpus"}, new String[] {"cpu", "mems", "cpuset.mems"},
            new String[] {"memory", "limit", "memory.limit_in_bytes"},
            new String[] {"memory", "reservation", "memory.soft_limit_in_bytes"},
            new String[] {"memory", "swap", "memory.memsw.limit_in_bytes"},
            new String[] {"cpu", "shares", "cpu.shares"}, new String[] {"cpu", "quota", "cpu.cfs_quota_us"},
            new String[] {"cpu", "period", "cpu.cfs_period_us"}, new String[] {"pids", "limit", "pids.max"},
            new String[] {"blockIO", "weight", "blkio.weight"});

    /**
     * Each update field runc writes that is not set back, with its cgroup v1 controller: section, name, controller.
     * It counts among the controllers an update touches, as the kernel may refuse it after runc wrote the cpuset.
     */
    private static final List<String[]> NOT_SET_BACK = List.of(
            new String[] {"cpu", "realtimeRuntime", "cpu"}, new String[] {"cpu", "realtimePeriod", "cpu"},
            new String[] {"cpu", "burst", "cpu"}, new String[] {"cpu", "idle", "cpu"},
            new String[] {"memory", "kernel", "memory"}, new String[] {"memory", "kernelTCP", "memory"},
            new String[] {"memory", "swappiness", "memory"}, new String[] {"memory", "disableOOMKiller", "memory"},
            new String[] {"blockIO", "leafWeight", "blkio"});

    private CgroupLimits() {}

    /**
     * The cgroup v1 files {@code linuxResources} (already checked) sets, or none when all it sets, set back or not, is
     * of one controller: runc either applies such an update or, for the limits of that controller, puts back what it
     * had.
     */
    static Set<String> touched(String owner, byte[] linuxResources) {
        JsonNode resources = Specs.jsonObject(owner, linuxResources);
        Set<String> files = new LinkedHashSet<>();
        Set<String> controllers = new LinkedHashSet<>();
        for (String[] file : FILES) {
            JsonNode value = resources.path(file[0]).path(file[1]);
            boolean set = value.isNumber() ? value.asLong() != 0 : value.isTextual() && !value.asText().isEmpty();
            if (set) {
                files.add(file[2]);
                controllers.add(file[2].substring(0, file[2].indexOf('.')));
            }
        }
        for (String[] field : NOT_SET_BACK) {
            JsonNode value = resources.path(field[0]).path(field[1]);
            // runc writes a swappiness of 0 too, and the OOM killer's switch only when true.
            if (value.isNumber() && (value.asLong() != 0 || field[1].equals("swappiness"))
                    || value.isBoolean() && value.asBoolean()) {
                controllers.add(field[2]);
            }
        }
        if (resources.path("hugepageLimits").isArray() && !resources.path("hugepageLimits").isEmpty()) {
            controllers.add("hugetlb");
        }
        return controllers.size() > 1 ? files : Set.of();
    }

    /**
     * The values of {@code files} in the cgroups of process {@code pid} that can be read: none when its cgroups
     * cannot be. A file this kernel lacks (no {@code blkio.weight} without CFQ, no {@code memory.memsw.*} without
     * swap accounting) is left out, not a reason to read nothing: an update naming one beside a cpuset, refused,
     * had nothing set back and kept the new cpuset.
     */
    static Map<String, String> read(int pid, Set<String> files) {
        Map<String, String> values = new LinkedHashMap<>();
        if (pid <= 0 || files.isEmpty()) {
            return values;
        }
        try {
            for (String line : Files.readAllLines(Path.of("/proc", Integer.toString(pid), "cgroup"))) {
                String[] parts = line.split(":", 3);
                if (parts.length < 3 || parts[1].isEmpty() || !parts[2].startsWith("/")) {
                    continue;
                }
                List<String> controllers = List.of(parts[1].split(","));
                for (String file : files) {
                    if (controllers.contains(file.substring(0, file.indexOf('.')))) {
                        Path path = CGROUPS.resolve(parts[1]).resolve(parts[2].substring(1)).resolve(file);
                        try {
                            values.put(file, Files.readString(path).strip());
                        } catch (IOException lacking) {
                            // Not on this kernel, or the process left that cgroup: nothing of it to put back.
                        }
                    }
                }
            }
        } catch (IOException | RuntimeException unreadable) {
            // A process gone: nothing to put back. On cgroup v2 no line names a v1 controller.
            return Map.of();
        }
        return values;
    }

    /** An update setting back {@code values}, as {@link #read} found them. */
    static byte[] restoring(Map<String, String> values) {
        // Numbers, and cpusets of digits, commas and hyphens (as the kernel prints them): no escaping needed.
        Map<String, StringBuilder> sections = new LinkedHashMap<>();
        for (String[] file : FILES) {
            String value = values.get(file[2]);
            if (value == null) {
                continue;
            }
            String json;
            if (file[2].startsWith("cpuset.")) {
                json = "\"" + value.replaceAll("[^0-9,-]", "") + "\"";
            } else if (value.equals("max")) {
                json = "-1";
            } else {
                long number = Long.parseLong(value);
                json = Long.toString(file[2].startsWith("memory.") && number >= UNLIMITED_MEMORY ? -1 : number);
            }
            StringBuilder section = sections.computeIfAbsent(file[0], name -> new StringBuilder());
            section.append(section.isEmpty() ? "" : ", ").append('"').append(file[1]).append("\": ").append(json);
        }
        StringBuilder resources = new StringBuilder("{");
        sections.forEach((name, fields) -> resources.append(resources.length() > 1 ? ", " : "").append('"')
                .append(name).append("\": {").append(fields).append('}'));
        return resources.append('}').toString().getBytes(StandardCharsets.UTF_8);
    }
}
