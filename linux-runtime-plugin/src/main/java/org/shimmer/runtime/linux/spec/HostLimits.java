package org.shimmer.runtime.linux.spec;

import java.io.IOException;
import java.io.InputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.BitSet;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.spec.Rlimit;
import org.shimmer.runtime.spec.Spec;

/**
 * What of a typed spec only this host can refuse, checked before runc sees it: runc failed at create or exec in its
 * own words ("error setting rlimit type 7: operation not permitted", "cpuset.cpus: numerical result out of range").
 * A limit the host does not report is left to runc. Blocking: reads {@code /proc} and {@code /sys}.
 */
public final class HostLimits {

    private static final Path NR_OPEN = Path.of("/proc/sys/fs/nr_open");
    private static final Path SELF_LIMITS = Path.of("/proc/self/limits");
    private static final Path SELF_STATUS = Path.of("/proc/self/status");
    private static final int CAP_SYS_RESOURCE = 24;
    private static final Path CGROUPS = Path.of("/sys/fs/cgroup");
    private static final Path POSSIBLE_CPUS = Path.of("/sys/devices/system/cpu/possible");

    private HostLimits() {}

    /** The container's spec, its cgroup at {@code cgroupsPath} ({@link CgroupPaths#of}). */
    public static void check(Spec spec, String cgroupsPath) {
        checkProcess(spec.process());
        checkResources(spec.resources(), cgroupsPath);
    }

    /**
     * A process's limits: runc sets them as this runtime, whose children it is. The kernel refuses an
     * {@code RLIMIT_NOFILE} above {@code fs.nr_open}, and any hard limit above the runtime's own without
     * {@code CAP_SYS_RESOURCE}.
     */
    public static void checkProcess(Spec.Process process) {
        if (process.rlimits().isEmpty()) {
            return;
        }
        boolean mayRaise = readStatusField("CapEff:").map(caps -> new BigInteger(caps, 16).testBit(CAP_SYS_RESOURCE))
                .orElse(true);
        Map<String, String> own = mayRaise ? Map.of() : ownHardLimits();
        for (Rlimit rlimit : process.rlimits()) {
            String hard = Long.toUnsignedString(rlimit.hard());
            String limit = own.get(rlimit.type());
            if (limit != null && !"unlimited".equals(limit) && limit.chars().allMatch(Character::isDigit)
                    && Long.compareUnsigned(rlimit.hard(), Long.parseUnsignedLong(limit)) > 0) {
                throw InvalidSpecException.ofField("process.rlimits.hard", rlimit.type() + " hard " + hard
                        + " above this runtime's own " + limit + ", which it may not raise without"
                        + " CAP_SYS_RESOURCE");
            }
            if (!"RLIMIT_NOFILE".equals(rlimit.type())) {
                continue;
            }
            Optional<Long> nrOpen = readLong(NR_OPEN);
            if (nrOpen.isPresent() && Long.compareUnsigned(rlimit.hard(), nrOpen.get()) > 0) {
                throw InvalidSpecException.ofField("process.rlimits.hard",
                        "RLIMIT_NOFILE hard " + hard + " above this host's fs.nr_open " + nrOpen.get());
            }
        }
    }

    // The rows of /proc/self/limits, by the rlimit each shows.
    private static final Map<String, String> LIMIT_ROWS = Map.ofEntries(Map.entry("Max cpu time", "RLIMIT_CPU"),
            Map.entry("Max file size", "RLIMIT_FSIZE"), Map.entry("Max data size", "RLIMIT_DATA"),
            Map.entry("Max stack size", "RLIMIT_STACK"), Map.entry("Max core file size", "RLIMIT_CORE"),
            Map.entry("Max resident set", "RLIMIT_RSS"), Map.entry("Max processes", "RLIMIT_NPROC"),
            Map.entry("Max open files", "RLIMIT_NOFILE"), Map.entry("Max locked memory", "RLIMIT_MEMLOCK"),
            Map.entry("Max address space", "RLIMIT_AS"), Map.entry("Max file locks", "RLIMIT_LOCKS"),
            Map.entry("Max pending signals", "RLIMIT_SIGPENDING"), Map.entry("Max msgqueue size", "RLIMIT_MSGQUEUE"),
            Map.entry("Max nice priority", "RLIMIT_NICE"), Map.entry("Max realtime priority", "RLIMIT_RTPRIO"),
            Map.entry("Max realtime timeout", "RLIMIT_RTTIME"));

    /** The runtime's own hard limits by rlimit type: "unlimited" or a number. */
    private static Map<String, String> ownHardLimits() {
        Map<String, String> limits = new HashMap<>();
        try {
            for (String line : Files.readAllLines(SELF_LIMITS, StandardCharsets.US_ASCII)) {
                for (Map.Entry<String, String> row : LIMIT_ROWS.entrySet()) {
                    if (line.startsWith(row.getKey() + " ")) {
                        // "<name> <soft> <hard> [<units>]": the columns are padded with spaces.
                        String[] columns = line.substring(row.getKey().length()).strip().split(" +");
                        if (columns.length >= 2) {
                            limits.put(row.getValue(), columns[1]);
                        }
                    }
                }
            }
        } catch (IOException unreadable) {
            return Map.of();
        }
        return limits;
    }

    private static Optional<String> readStatusField(String name) {
        try {
            return Files.readAllLines(SELF_STATUS, StandardCharsets.US_ASCII).stream()
                    .filter(line -> line.startsWith(name)).map(line -> line.substring(name.length()).strip())
                    .findFirst();
        } catch (IOException unreadable) {
            return Optional.empty();
        }
    }

    /**
     * A container's limits: every CPU of its cpuset must be one its cgroup can have. Under cgroup v1 that is the
     * CPUs of its nearest existing parent cgroup (runc makes the missing ones with their parent's); under v2 any
     * CPU the host may have. {@code cgroupsPath} null (an update of a running container) checks against the whole
     * hierarchy's.
     */
    public static void checkResources(Spec.Resources resources, String cgroupsPath) {
        String cpus = resources.cpusetCpus();
        if (cpus == null) {
            return;
        }
        Optional<String> available = availableCpus(cgroupsPath);
        if (available.isEmpty()) {
            return;
        }
        BitSet host = parse(available.get());
        if (host == null) {
            return;
        }
        for (String range : cpus.split(",")) {
            String[] bounds = range.split("-");
            long first = cpuNumber(bounds[0]);
            long last = cpuNumber(bounds[bounds.length - 1]);
            long missing = first > Integer.MAX_VALUE - 1 ? first : host.nextClearBit((int) first);
            if (missing <= last) {
                throw InvalidSpecException.ofField("linux.resources.cpu.cpus", "CPU " + missing
                        + " is not on this host, whose containers may use CPUs " + available.get() + ": \""
                        + cpus + "\"");
            }
        }
    }

    private static Optional<String> availableCpus(String cgroupsPath) {
        if (Files.exists(CGROUPS.resolve("cgroup.controllers"))) {
            return readLine(POSSIBLE_CPUS);
        }
        Path hierarchy = CGROUPS.resolve("cpuset");
        if (!Files.isDirectory(hierarchy)) {
            return readLine(POSSIBLE_CPUS);
        }
        Path cgroup = cgroupsPath == null ? hierarchy : hierarchy.resolve(cgroupsPath.replaceFirst("^/+", ""))
                .normalize().getParent();
        while (cgroup != null && cgroup.startsWith(hierarchy) && !Files.isDirectory(cgroup)) {
            cgroup = cgroup.getParent();
        }
        return cgroup == null || !cgroup.startsWith(hierarchy) ? Optional.empty()
                : readLine(cgroup.resolve("cpuset.cpus"));
    }

    // The spec takes CPU numbers of any length: one past a long is past every host's CPUs too.
    private static long cpuNumber(String digits) {
        return new BigInteger(digits).min(BigInteger.valueOf(Long.MAX_VALUE)).longValue();
    }

    /** A kernel CPU list such as {@code 0-3,8}; null when it is not one. */
    private static BitSet parse(String list) {
        BitSet cpus = new BitSet();
        try {
            for (String range : list.split(",")) {
                String[] bounds = range.split("-");
                cpus.set(Integer.parseInt(bounds[0]), Integer.parseInt(bounds[bounds.length - 1]) + 1);
            }
        } catch (RuntimeException notAList) {
            return null;
        }
        return cpus;
    }

    private static Optional<Long> readLong(Path file) {
        try {
            return readLine(file).map(Long::parseLong);
        } catch (NumberFormatException notANumber) {
            return Optional.empty();
        }
    }

    // One read: a sysctl file gives nothing at an offset past 0, so Files.readString (which reads one byte first
    // for a file of size 0) read "1" of fs.nr_open's "1048576".
    private static Optional<String> readLine(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            String text = new String(in.readNBytes(4096), StandardCharsets.US_ASCII).strip();
            return text.isEmpty() ? Optional.empty() : Optional.of(text);
        } catch (IOException unreadable) {
            return Optional.empty();
        }
    }
}
