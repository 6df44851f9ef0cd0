package org.shimmer.runtime.shim;

import java.util.Objects;
import java.util.OptionalLong;

/**
 * A container's resource usage, decoded from what its shim reports: containerd's cgroup v1 or v2 metrics
 * (remote shim) or runc's stats JSON (local shim), on a cgroup v1 or v2 host alike.
 *
 * <p>Conventions: counters and gauges are {@code long}s, 0 when the cgroup reports nothing. A limit is an
 * {@link OptionalLong} that is empty when there is no limit ("max" in the cgroup), never a huge number. A value
 * only some cgroup versions or formats report is an {@link OptionalLong} that is empty where it is unknown; each
 * record says which. Unsigned counters beyond {@link Long#MAX_VALUE} do not occur in practice and are not
 * guarded.
 *
 * @param cpu CPU time used
 * @param memory memory charged to the container's cgroup
 * @param pids tasks in the container's cgroup
 * @param blockIo block device I/O, summed over all devices
 * @param raw the shim's undecoded answer, for what the typed view leaves out
 */
public record ContainerStats(Cpu cpu, Memory memory, Pids pids, BlockIo blockIo, Stats raw) {

    public ContainerStats {
        Objects.requireNonNull(cpu, "cpu");
        Objects.requireNonNull(memory, "memory");
        Objects.requireNonNull(pids, "pids");
        Objects.requireNonNull(blockIo, "blockIo");
        Objects.requireNonNull(raw, "raw");
    }

    /**
     * CPU time, in nanoseconds (cgroup v2's microseconds are converted).
     *
     * @param usageNanos total CPU time of all the container's tasks
     * @param userNanos the part spent in user mode
     * @param systemNanos the part spent in the kernel
     * @param throttledPeriods enforcement periods in which the CPU quota throttled the container; empty when
     *     the answer has no CPU throttling section (0 without a quota)
     * @param throttledNanos time the container was throttled; empty when unreported
     */
    public record Cpu(long usageNanos, long userNanos, long systemNanos, OptionalLong throttledPeriods,
            OptionalLong throttledNanos) {

        public Cpu {
            Objects.requireNonNull(throttledPeriods, "throttledPeriods");
            Objects.requireNonNull(throttledNanos, "throttledNanos");
        }
    }

    /**
     * Memory, in bytes.
     *
     * @param usageBytes memory charged to the cgroup, page cache and tmpfs included ({@code memory.usage_in_bytes}
     *     on v1, {@code memory.current} on v2)
     * @param limitBytes the memory limit; empty when there is none
     * @param maxUsageBytes the highest usage seen ({@code memory.max_usage_in_bytes} on v1, {@code memory.peak} on
     *     v2); empty when the answer has none (on v2 a shim fills it only where the kernel has {@code memory.peak})
     * @param fileBytes page cache and tmpfs ({@code total_cache} on v1, {@code file} on v2); empty when unreported
     * @param anonBytes anonymous memory ({@code total_rss} on v1, {@code anon} on v2); empty when unreported
     */
    public record Memory(long usageBytes, OptionalLong limitBytes, OptionalLong maxUsageBytes,
            OptionalLong fileBytes, OptionalLong anonBytes) {

        public Memory {
            Objects.requireNonNull(limitBytes, "limitBytes");
            Objects.requireNonNull(maxUsageBytes, "maxUsageBytes");
            Objects.requireNonNull(fileBytes, "fileBytes");
            Objects.requireNonNull(anonBytes, "anonBytes");
        }
    }

    /**
     * Tasks (processes and threads).
     *
     * @param current tasks now in the cgroup
     * @param limit the pids limit; empty when there is none
     */
    public record Pids(long current, OptionalLong limit) {

        public Pids {
            Objects.requireNonNull(limit, "limit");
        }
    }

    /**
     * Block device I/O, summed over devices. On cgroup v1 the kernel counts only I/O that reached a block device
     * through the blkio controller; writes still in the page cache are not counted yet.
     *
     * @param readBytes bytes read
     * @param writeBytes bytes written
     * @param readOps read operations
     * @param writeOps write operations
     */
    public record BlockIo(long readBytes, long writeBytes, long readOps, long writeOps) {}
}
