package org.shimmer.runtime.linux.stats;

import com.google.protobuf.InvalidProtocolBufferException;
import java.util.List;
import java.util.OptionalLong;
import org.shimmer.runtime.linux.stats.proto.v1.BlkIOEntry;
import org.shimmer.runtime.linux.stats.proto.v1.Metrics;
import org.shimmer.runtime.shim.ContainerStats;
import org.shimmer.runtime.shim.Stats;

/** Decodes containerd's {@code io.containerd.cgroups.v1.Metrics}, what the runc shim reports on cgroup v1. */
public final class CgroupV1Metrics {

    public static final String TYPE = "io.containerd.cgroups.v1.Metrics";

    private CgroupV1Metrics() {}

    /** The typed view of {@code raw}, whose value is a v1 {@code Metrics} message. */
    public static ContainerStats decode(Stats raw) throws InvalidProtocolBufferException {
        Metrics metrics = Metrics.parseFrom(raw.value());
        var cpu = metrics.getCpu();
        var memory = metrics.getMemory();
        var blkio = metrics.getBlkio();
        return new ContainerStats(
                new ContainerStats.Cpu(cpu.getUsage().getTotal(), cpu.getUsage().getUser(),
                        cpu.getUsage().getKernel(), throttling(metrics, cpu.getThrottling().getThrottledPeriods()),
                        throttling(metrics, cpu.getThrottling().getThrottledTime())),
                new ContainerStats.Memory(memory.getUsage().getUsage(),
                        CgroupLimits.memory(metrics.hasMemory() && memory.hasUsage(), memory.getUsage().getLimit()),
                        CgroupLimits.reported(memory.getUsage().getMax()),
                        memory.hasUsage() ? OptionalLong.of(memory.getTotalCache()) : OptionalLong.empty(),
                        memory.hasUsage() ? OptionalLong.of(memory.getTotalRss()) : OptionalLong.empty()),
                new ContainerStats.Pids(metrics.getPids().getCurrent(),
                        CgroupLimits.pids(metrics.getPids().getLimit())),
                new ContainerStats.BlockIo(sum(blkio.getIoServiceBytesRecursiveList(), "Read"),
                        sum(blkio.getIoServiceBytesRecursiveList(), "Write"),
                        sum(blkio.getIoServicedRecursiveList(), "Read"),
                        sum(blkio.getIoServicedRecursiveList(), "Write")),
                raw);
    }

    private static OptionalLong throttling(Metrics metrics, long value) {
        return metrics.getCpu().hasThrottling() ? OptionalLong.of(value) : OptionalLong.empty();
    }

    /** The blkio files list each device once per op (Read, Write, Sync, Async, Discard, Total): sum one op. */
    private static long sum(List<BlkIOEntry> entries, String op) {
        return entries.stream().filter(entry -> entry.getOp().equalsIgnoreCase(op)).mapToLong(BlkIOEntry::getValue)
                .sum();
    }
}
