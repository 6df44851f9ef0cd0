package org.shimmer.containerd.task;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.google.protobuf.Any;
import com.google.protobuf.Descriptors.FieldDescriptor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import org.shimmer.runtime.linux.stats.RuncStats;
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
 * Built from the local shim's typed view, where a limit that is not set is 0; on v1, what runc's stats event has
 * beyond that view is added, as runc's shim answers it (see {@link #addRunc}).
 */
final class ContainerdMetrics {

    static final String V1_TYPE = "io.containerd.cgroups.v1.Metrics";
    static final String V2_TYPE = "io.containerd.cgroups.v2.Metrics";
    private static final boolean UNIFIED = Files.exists(Path.of("/sys/fs/cgroup/cgroup.controllers"));
    private static final JsonMapper JSON = JsonMapper.builder().build();

    private ContainerdMetrics() {}

    static Any of(ContainerStats stats) {
        return UNIFIED ? v2(stats) : v1(stats);
    }

    static Any v1(ContainerStats stats) {
        ContainerStats.Cpu cpu = stats.cpu();
        ContainerStats.Memory memory = stats.memory();
        CPUUsage.Builder cpuUsage = CPUUsage.newBuilder().setTotal(cpu.usageNanos()).setUser(cpu.userNanos())
                .setKernel(cpu.systemNanos());
        MemoryStat.Builder memoryStat = MemoryStat.newBuilder()
                .setTotalCache(memory.fileBytes().orElse(0)).setCache(memory.fileBytes().orElse(0))
                .setTotalRss(memory.anonBytes().orElse(0)).setRss(memory.anonBytes().orElse(0))
                .setUsage(MemoryEntry.newBuilder().setUsage(memory.usageBytes())
                        .setLimit(memory.limitBytes().orElse(0)).setMax(memory.maxUsageBytes().orElse(0)));
        if (stats.raw() != null && RuncStats.TYPE.equals(stats.raw().typeUrl())) {
            addRunc(stats.raw().value(), cpuUsage, memoryStat);
        }
        var metrics = org.shimmer.runtime.linux.stats.proto.v1.Metrics.newBuilder()
                .setPids(PidsStat.newBuilder().setCurrent(stats.pids().current())
                        .setLimit(stats.pids().limit().orElse(0)))
                .setCpu(CPUStat.newBuilder()
                        .setUsage(cpuUsage)
                        .setThrottling(Throttle.newBuilder().setThrottledPeriods(cpu.throttledPeriods().orElse(0))
                                .setThrottledTime(cpu.throttledNanos().orElse(0))))
                .setMemory(memoryStat)
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

    /**
     * Adds what runc's stats event (v1) has beyond the typed view, as containerd's cgroups library reads it from the
     * same files for runc's shim: each counter of memory.stat (CRI's working set is the usage less
     * {@code total_inactive_file}, which was 0 here: a task's page cache counted as its working set), the usage,
     * swap and kernel entries with their limits as the kernel has them (no limit is its largest value, not 0), and
     * each CPU's usage. runc omits zero counters: absent is 0. A stats event that cannot be read adds nothing.
     */
    private static void addRunc(byte[] event, CPUUsage.Builder cpu, MemoryStat.Builder memory) {
        JsonNode data;
        try {
            data = JSON.readTree(event).path("data");
        } catch (IOException unreadable) {
            return;
        }
        data.path("cpu").path("usage").path("percpu").forEach(perCpu -> cpu.addPerCpu(unsigned(perCpu)));
        JsonNode memoryJson = data.path("memory");
        // memory.stat's names, without their underscores, are the fields' (pgfault: pg_fault); but one.
        Map<String, JsonNode> counters = new HashMap<>();
        for (Map.Entry<String, JsonNode> counter : memoryJson.path("raw").properties()) {
            counters.put(counter.getKey().replace("_", ""), counter.getValue());
        }
        counters.put("hierarchicalswaplimit", counters.get("hierarchicalmemswlimit"));
        for (FieldDescriptor field : MemoryStat.getDescriptor().getFields()) {
            JsonNode counter = counters.get(field.getName().replace("_", ""));
            if (field.getJavaType() == FieldDescriptor.JavaType.LONG && counter != null) {
                memory.setField(field, unsigned(counter));
            }
        }
        memoryEntry(memoryJson.path("usage")).ifPresent(memory::setUsage);
        memoryEntry(memoryJson.path("swap")).ifPresent(memory::setSwap);
        memoryEntry(memoryJson.path("kernel")).ifPresent(memory::setKernel);
        memoryEntry(memoryJson.path("kernelTCP")).ifPresent(memory::setKernelTcp);
    }

    private static Optional<MemoryEntry> memoryEntry(JsonNode entry) {
        if (!entry.isObject()) {
            return Optional.empty();
        }
        return Optional.of(MemoryEntry.newBuilder().setLimit(unsigned(entry.path("limit")))
                .setUsage(unsigned(entry.path("usage"))).setMax(unsigned(entry.path("max")))
                .setFailcnt(unsigned(entry.path("failcnt"))).build());
    }

    /** A uint64 of runc's JSON, its bits kept: one above {@link Long#MAX_VALUE} goes on the wire as it came. */
    private static long unsigned(JsonNode number) {
        return number.bigIntegerValue().longValue();
    }

    private static BlkIOEntry entry(String op, long value) {
        return BlkIOEntry.newBuilder().setOp(op).setValue(value).build();
    }
}
