package org.shimmer.containerd.task;

import com.google.protobuf.Any;
import java.nio.file.Files;
import java.nio.file.Path;
import org.shimmer.runtime.shim.ContainerStats;
import org.shimmer.runtime.linux.stats.proto.v1.BlkIOEntry;
import org.shimmer.runtime.linux.stats.proto.v1.BlkIOStat;
import org.shimmer.runtime.linux.stats.proto.v1.CPUStat;
import org.shimmer.runtime.linux.stats.proto.v1.CPUUsage;
import org.shimmer.runtime.linux.stats.proto.v1.MemoryEntry;
import org.shimmer.runtime.linux.stats.proto.v1.MemoryStat;
import org.shimmer.runtime.linux.stats.proto.v1.PidsStat;
import org.shimmer.runtime.linux.stats.proto.v1.Throttle;

/**
 * A task's stats as containerd's shims answer {@code Stats}: {@code io.containerd.cgroups.v1.Metrics} on a cgroup
 * v1 host, {@code io.containerd.cgroups.v2.Metrics} on a unified one, so that {@code ctr task metrics} prints them.
 * Built from the local shim's typed view; a limit that is not set is left 0, as the cgroup libraries leave it.
 */
final class ContainerdMetrics {

    static final String V1_TYPE = "io.containerd.cgroups.v1.Metrics";
    static final String V2_TYPE = "io.containerd.cgroups.v2.Metrics";
    private static final boolean UNIFIED = Files.exists(Path.of("/sys/fs/cgroup/cgroup.controllers"));

    private ContainerdMetrics() {}

    static Any of(ContainerStats stats) {
        return UNIFIED ? v2(stats) : v1(stats);
    }

    static Any v1(ContainerStats stats) {
        ContainerStats.Cpu cpu = stats.cpu();
        ContainerStats.Memory memory = stats.memory();
        var metrics = org.shimmer.runtime.linux.stats.proto.v1.Metrics.newBuilder()
                .setPids(PidsStat.newBuilder().setCurrent(stats.pids().current())
                        .setLimit(stats.pids().limit().orElse(0)))
                .setCpu(CPUStat.newBuilder()
                        .setUsage(CPUUsage.newBuilder().setTotal(cpu.usageNanos()).setUser(cpu.userNanos())
                                .setKernel(cpu.systemNanos()))
                        .setThrottling(Throttle.newBuilder().setThrottledPeriods(cpu.throttledPeriods().orElse(0))
                                .setThrottledTime(cpu.throttledNanos().orElse(0))))
                .setMemory(MemoryStat.newBuilder()
                        .setTotalCache(memory.fileBytes().orElse(0)).setCache(memory.fileBytes().orElse(0))
                        .setTotalRss(memory.anonBytes().orElse(0)).setRss(memory.anonBytes().orElse(0))
                        .setUsage(MemoryEntry.newBuilder().setUsage(memory.usageBytes())
                                .setLimit(memory.limitBytes().orElse(0)).setMax(memory.maxUsageBytes().orElse(0))))
                .setBlkio(BlkIOStat.newBuilder()
                        .addIoServiceBytesRecursive(entry("Read", stats.blockIo().readBytes()))
                        .addIoServiceBytesRecursive(entry("Write", stats.blockIo().writeBytes()))
                        .addIoServicedRecursive(entry("Read", stats.blockIo().readOps()))
                        .addIoServicedRecursive(entry("Write", stats.blockIo().writeOps())))
                .build();
        return Any.newBuilder().setTypeUrl(V1_TYPE).setValue(metrics.toByteString()).build();
    }

    static Any v2(ContainerStats stats) {
        ContainerStats.Cpu cpu = stats.cpu();
        ContainerStats.Memory memory = stats.memory();
        var metrics = org.shimmer.runtime.linux.stats.proto.v2.Metrics.newBuilder()
                .setPids(org.shimmer.runtime.linux.stats.proto.v2.PidsStat.newBuilder()
                        .setCurrent(stats.pids().current()).setLimit(stats.pids().limit().orElse(0)))
                .setCpu(org.shimmer.runtime.linux.stats.proto.v2.CPUStat.newBuilder()
                        .setUsageUsec(cpu.usageNanos() / 1000).setUserUsec(cpu.userNanos() / 1000)
                        .setSystemUsec(cpu.systemNanos() / 1000).setNrThrottled(cpu.throttledPeriods().orElse(0))
                        .setThrottledUsec(cpu.throttledNanos().orElse(0) / 1000))
                .setMemory(org.shimmer.runtime.linux.stats.proto.v2.MemoryStat.newBuilder()
                        .setUsage(memory.usageBytes()).setUsageLimit(memory.limitBytes().orElse(0))
                        .setMaxUsage(memory.maxUsageBytes().orElse(0)).setAnon(memory.anonBytes().orElse(0))
                        .setFile(memory.fileBytes().orElse(0)))
                .build();
        return Any.newBuilder().setTypeUrl(V2_TYPE).setValue(metrics.toByteString()).build();
    }

    private static BlkIOEntry entry(String op, long value) {
        return BlkIOEntry.newBuilder().setOp(op).setValue(value).build();
    }
}
