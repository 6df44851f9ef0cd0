package org.shimmer.runtime.linux.shim;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.MissingNode;
import java.math.BigInteger;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.linux.bundle.Specs;
import org.shimmer.runtime.spec.Spec;

/**
 * An update's {@code LinuxResources} JSON, checked before anything reaches runc or the shim, and the kernel's
 * refusal of one that passed: the same on both shims.
 *
 * <p>A value that can never be valid is refused as {@link InvalidSpecException} naming the field and the value.
 * runc and containerd's shim reported such values as internal failures in their own words, differently per shim,
 * and some only after part of the update was applied: runc wrote a cpu.shares of 1 or 262145, which the kernel
 * clamped to 2 or 262144, then failed; it took a pids limit of -2 as "unlimited", and a negative quota too. The
 * ranges are the typed {@link Spec.Resources}'s, with what runc gives a meaning in an update: 0 leaves the limit
 * unchanged, -1 lifts it where the kernel has "unlimited".
 *
 * <p>A value valid in form that the kernel refuses for this container is typed by {@link #refused}: a memory limit
 * below what the container uses and the kernel could not reclaim is a {@link FailedPreconditionException} (the same
 * update may succeed once usage falls), any other value the kernel refused an {@link InvalidSpecException}. runc puts
 * the limits it had back when the kernel refuses one.
 */
public final class ResourceUpdates {

    private static final String PREFIX = "linux.resources.";
    private static final long MAX = Long.MAX_VALUE;
    private static final Pattern CPU_LIST = Pattern.compile("\\d+(-\\d+)?(,\\d+(-\\d+)?)*");
    // runc 1.1's words for the kernel's EBUSY on memory.limit_in_bytes: the limit is below the usage.
    private static final Pattern BELOW_USAGE = Pattern.compile("unable to set memory limit to (-?\\d+) \\(([^)]*)\\)");
    // runc 1.1's words for a cgroup file that refused a value: failed to write "v": write /sys/fs/cgroup/…: why
    private static final Pattern WRITE_REFUSED =
            Pattern.compile("failed to write \"([^\"]*)\": write \\S*/([^/\\s:]+): ([a-z ]+)");
    // The update's field that each cgroup file (v1 and v2) holds.
    private static final Map<String, String> FIELDS = Map.ofEntries(
            Map.entry("memory.limit_in_bytes", "memory.limit"), Map.entry("memory.max", "memory.limit"),
            Map.entry("memory.memsw.limit_in_bytes", "memory.swap"), Map.entry("memory.swap.max", "memory.swap"),
            Map.entry("memory.soft_limit_in_bytes", "memory.reservation"),
            Map.entry("memory.low", "memory.reservation"),
            Map.entry("cpu.shares", "cpu.shares"), Map.entry("cpu.weight", "cpu.shares"),
            Map.entry("cpu.cfs_quota_us", "cpu.quota"), Map.entry("cpu.max", "cpu.quota"),
            Map.entry("cpu.cfs_period_us", "cpu.period"), Map.entry("cpu.rt_runtime_us", "cpu.realtimeRuntime"),
            Map.entry("cpu.rt_period_us", "cpu.realtimePeriod"), Map.entry("cpuset.cpus", "cpu.cpus"),
            Map.entry("cpuset.mems", "cpu.mems"), Map.entry("pids.max", "pids.limit"),
            Map.entry("blkio.weight", "blockIO.weight"), Map.entry("io.weight", "blockIO.weight"));

    // The names of LinuxResources's fields (the runtime spec's JSON), by section, "" for the top level. Go's JSON,
    // with which runc and containerd's shim read an update, takes a key in any case for the field it names.
    private static final Map<String, List<String>> NAMES = Map.of(
            "", List.of("devices", "memory", "cpu", "pids", "blockIO", "hugepageLimits", "network", "rdma", "unified"),
            "memory", List.of("limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness",
                    "disableOOMKiller", "useHierarchy", "checkBeforeUpdate"),
            "cpu", List.of("shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems",
                    "idle"),
            "pids", List.of("limit"),
            "blockIO", List.of("weight", "leafWeight", "weightDevice", "throttleReadBpsDevice",
                    "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice"));

    /** What an integer field takes: -1 when {@code unlimited}, 0 when {@code unchanged}, and min to max. */
    private record Range(boolean unlimited, boolean unchanged, long min, long max) {

        boolean admits(BigInteger value) {
            return unlimited && value.equals(BigInteger.ONE.negate())
                    || unchanged && value.signum() == 0
                    || value.compareTo(BigInteger.valueOf(min)) >= 0 && value.compareTo(BigInteger.valueOf(max)) <= 0;
        }

        String expected() {
            return (unlimited ? "-1 (unlimited), " : "") + (unchanged ? "0 (unchanged) or " : "") + min + " to " + max;
        }
    }

    private static final Range BYTES = new Range(true, true, Spec.Resources.MIN_MEMORY, MAX);
    private static final Range ANY_BYTES = new Range(true, true, 1, MAX);

    private ResourceUpdates() {}

    /**
     * Requires {@code linuxResources} to be one JSON object whose limits could be valid.
     *
     * @param owner names the update in the error message, e.g. "update task ns/id"
     * @throws InvalidSpecException naming the first field found invalid and its value
     */
    public static void check(String owner, byte[] linuxResources) {
        JsonNode resources = Specs.jsonObject(owner, linuxResources);
        spelled(resources, "");
        JsonNode memory = section(resources, "memory");
        Long limit = integer(memory, "memory.limit", BYTES);
        integer(memory, "memory.reservation", ANY_BYTES);
        Long swap = integer(memory, "memory.swap", BYTES);
        if (limit != null && swap != null && limit > 0 && swap > 0 && swap < limit) {
            // The kernel's memory+swap limit cannot be below the memory limit.
            throw InvalidSpecException.ofField(PREFIX + "memory.swap", "memory and swap, must be at least"
                    + " memory.limit " + limit + ", was " + swap);
        }
        integer(memory, "memory.kernel", ANY_BYTES);
        integer(memory, "memory.kernelTCP", ANY_BYTES);
        integer(memory, "memory.swappiness", new Range(false, false, 0, 100));
        bool(memory, "memory.disableOOMKiller");
        JsonNode cpu = section(resources, "cpu");
        integer(cpu, "cpu.shares", new Range(false, true, Spec.Resources.MIN_CPU_SHARES,
                Spec.Resources.MAX_CPU_SHARES));
        Long period = integer(cpu, "cpu.period", new Range(false, true, Spec.Resources.MIN_CPU_PERIOD,
                Spec.Resources.MAX_CPU_PERIOD));
        // Without a period, the typed spec's default: the one a container without a CPU limit has.
        integer(cpu, "cpu.quota", new Range(true, true, Spec.Resources.MIN_CPU_QUOTA, Spec.Resources.MAX_CPUS
                * (period == null || period == 0 ? Spec.Resources.CPU_PERIOD : period)));
        integer(cpu, "cpu.realtimeRuntime", ANY_BYTES);
        integer(cpu, "cpu.realtimePeriod", new Range(false, true, 1, MAX));
        cpuList(cpu, "cpu.cpus");
        cpuList(cpu, "cpu.mems");
        JsonNode pids = section(resources, "pids");
        integer(pids, "pids.limit", new Range(true, true, 1, Spec.Resources.MAX_PIDS));
        JsonNode blockIo = section(resources, "blockIO");
        integer(blockIo, "blockIO.weight", new Range(false, true, 10, 1000));
        integer(blockIo, "blockIO.leafWeight", new Range(false, true, 10, 1000));
    }

    /**
     * {@code error}, the failure of an update of {@code task} ("task ns/id"), typed when it is the kernel's refusal
     * of a value; any other failure as it is.
     */
    public static Throwable refused(String task, Throwable error) {
        if (error instanceof InvalidSpecException || error.getMessage() == null) {
            return error;
        }
        String message = error.getMessage();
        Matcher below = BELOW_USAGE.matcher(message);
        if (below.find()) {
            return new FailedPreconditionException("update " + task + ": memory limit " + below.group(1)
                    + " is below what the container uses, and the kernel could not reclaim enough ("
                    + below.group(2) + "); the container keeps its limits", error);
        }
        Matcher write = WRITE_REFUSED.matcher(message);
        if (write.find()) {
            String field = FIELDS.get(write.group(2));
            String reason = write.group(1) + " refused by the kernel (" + write.group(2) + ": " + write.group(3)
                    + ") for update " + task + "; the container keeps its limits";
            InvalidSpecException invalid = field == null ? new InvalidSpecException("invalid spec: " + reason, error)
                    : InvalidSpecException.ofField(PREFIX + field, reason);
            if (invalid.getCause() == null) {
                invalid.initCause(error);
            }
            return invalid;
        }
        return error;
    }

    /** The object {@code name} of {@code resources}, or a missing node when absent or null. */
    private static JsonNode section(JsonNode resources, String name) {
        JsonNode node = resources.path(name);
        if (node.isNull()) {
            return MissingNode.getInstance();
        }
        if (!node.isMissingNode() && !node.isObject()) {
            throw InvalidSpecException.ofField(PREFIX + name, "must be a JSON object, was " + shown(node));
        }
        spelled(node, name);
        return node;
    }

    /**
     * Refuses a key of {@code object} (section {@code section}, "" for the top level) that Go's JSON takes for one of
     * its fields though spelled otherwise ("Limit", "PIDS", "\u017Fhares"): it would reach runc unchecked.
     */
    private static void spelled(JsonNode object, String section) {
        List<String> names = NAMES.getOrDefault(section, List.of());
        for (Iterator<String> keys = object.fieldNames(); keys.hasNext();) {
            String key = keys.next();
            for (String name : names) {
                if (!key.equals(name) && folded(key).equals(folded(name))) {
                    throw InvalidSpecException.ofField(PREFIX + (section.isEmpty() ? "" : section + ".") + key,
                            "must be spelled " + name + ", as runc and the shim read any case of it for that field");
                }
            }
        }
    }

    /** {@code name} as Go's case-insensitive match compares it: ASCII letters, the long s and the Kelvin sign. */
    private static String folded(String name) {
        StringBuilder folded = new StringBuilder(name.length());
        for (char c : name.toCharArray()) {
            folded.append(c == '\u017F' ? 's' : c == '\u212A' ? 'k' : c < 128 ? Character.toLowerCase(c) : c);
        }
        return folded.toString();
    }

    private static Long integer(JsonNode section, String field, Range range) {
        JsonNode node = section.path(field.substring(field.indexOf('.') + 1));
        if (node.isMissingNode() || node.isNull()) {
            return null;
        }
        if (!node.isIntegralNumber()) {
            throw InvalidSpecException.ofField(PREFIX + field, "must be an integer, " + range.expected() + ", was "
                    + shown(node));
        }
        BigInteger value = node.bigIntegerValue();
        if (!range.admits(value)) {
            throw InvalidSpecException.ofField(PREFIX + field, "must be " + range.expected() + ", was " + value);
        }
        return value.longValueExact();
    }

    private static void bool(JsonNode section, String field) {
        JsonNode node = section.path(field.substring(field.indexOf('.') + 1));
        if (!node.isMissingNode() && !node.isNull() && !node.isBoolean()) {
            throw InvalidSpecException.ofField(PREFIX + field, "must be true or false, was " + shown(node));
        }
    }

    private static void cpuList(JsonNode section, String field) {
        JsonNode node = section.path(field.substring(field.indexOf('.') + 1));
        if (node.isMissingNode() || node.isNull()) {
            return;
        }
        if (!node.isTextual() || !node.asText().isEmpty() && !CPU_LIST.matcher(node.asText()).matches()) {
            throw InvalidSpecException.ofField(PREFIX + field, "must be \"\" (unchanged) or a list like 0-3,5, was "
                    + shown(node));
        }
        for (String range : node.asText().split(",")) {
            String[] bounds = range.split("-");
            if (bounds.length == 2 && new BigInteger(bounds[0]).compareTo(new BigInteger(bounds[1])) > 0) {
                throw InvalidSpecException.ofField(PREFIX + field, "range " + range + " runs backwards in "
                        + shown(node));
            }
        }
    }

    /** A value as JSON, cut short: the error names it, not a copy of a large document. */
    private static String shown(JsonNode node) {
        // A fraction as written (67108864.5), not as a double prints (6.71088645E7).
        String json = node.isFloatingPointNumber() ? node.decimalValue().toPlainString() : node.toString();
        return json.length() <= 64 ? json : json.substring(0, 64) + "…";
    }
}
