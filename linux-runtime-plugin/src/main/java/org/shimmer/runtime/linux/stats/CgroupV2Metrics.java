package org.shimmer.runtime.linux.stats;

import com.google.protobuf.InvalidProtocolBufferException;
import java.util.OptionalLong;
import java.util.function.ToLongFunction;
import org.shimmer.runtime.linux.stats.proto.v2.IOEntry;
import org.shimmer.runtime.linux.stats.proto.v2.Metrics;
import org.shimmer.runtime.shim.ContainerStats;
import org.shimmer.runtime.shim.Stats;

/** Decodes containerd's {@code io.containerd.cgroups.v2.Metrics}, what the runc shim reports on cgroup v2. */
public final class CgroupV2Metrics {

    public static final String TYPE = "io.containerd.cgroups.v2.Metrics";

    private static final long NANOS_PER_MICRO = 1_000;

    private CgroupV2Metrics() {}

    /** The typed view of {@code raw}, whose value is a v2 {@code Metrics} message. */
    public static ContainerStats decode(Stats raw) throws InvalidProtocolBufferException {
        Metrics metrics = Metrics.parseFrom(raw.value());
        var cpu = metrics.getCpu();
        var memory = metrics.getMemory();
        boolean cpuReported = metrics.hasCpu();
        return new ContainerStats(
                new ContainerStats.Cpu(cpu.getUsageUsec() * NANOS_PER_MICRO, cpu.getUserUsec() * NANOS_PER_MICRO,
                        cpu.getSystemUsec() * NANOS_PER_MICRO,
                        cpuReported ? OptionalLong.of(cpu.getNrThrottled()) : OptionalLong.empty(),
                        cpuReported ? OptionalLong.of(cpu.getThrottledUsec() * NANOS_PER_MICRO) : OptionalLong.empty()),
                new ContainerStats.Memory(memory.getUsage(), CgroupLimits.memory(metrics.hasMemory(), memory.getUsageLimit()),
                        CgroupLimits.reported(memory.getMaxUsage()),
                        metrics.hasMemory() ? OptionalLong.of(memory.getFile()) : OptionalLong.empty(),
                        metrics.hasMemory() ? OptionalLong.of(memory.getAnon()) : OptionalLong.empty()),
                new ContainerStats.Pids(metrics.getPids().getCurrent(),
                        CgroupLimits.pids(metrics.getPids().getLimit())),
                new ContainerStats.BlockIo(sum(metrics, IOEntry::getRbytes), sum(metrics, IOEntry::getWbytes),
                        sum(metrics, IOEntry::getRios), sum(metrics, IOEntry::getWios)),
                raw);
    }

    /** io.stat has one line per device with all its counters. */
    private static long sum(Metrics metrics, ToLongFunction<IOEntry> counter) {
        return metrics.getIo().getUsageList().stream().mapToLong(counter).sum();
    }
}
