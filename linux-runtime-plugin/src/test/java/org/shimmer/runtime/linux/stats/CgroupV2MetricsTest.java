package org.shimmer.runtime.linux.stats;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.OptionalLong;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.linux.stats.proto.v2.CPUStat;
import org.shimmer.runtime.linux.stats.proto.v2.IOEntry;
import org.shimmer.runtime.linux.stats.proto.v2.IOStat;
import org.shimmer.runtime.linux.stats.proto.v2.MemoryStat;
import org.shimmer.runtime.linux.stats.proto.v2.Metrics;
import org.shimmer.runtime.linux.stats.proto.v2.PidsStat;
import org.shimmer.runtime.shim.ContainerStats;
import org.shimmer.runtime.shim.Stats;

/**
 * No host here runs cgroup v2, so the messages are built with the generated classes, with the values containerd
 * fills in from the cgroup's files (cpu.stat in microseconds, memory.max "max" as 2^64-1).
 */
class CgroupV2MetricsTest {

    @Test
    void decodesAV2Message() throws Exception {
        Metrics metrics = Metrics.newBuilder()
                .setPids(PidsStat.newBuilder().setCurrent(4).setLimit(32))
                .setCpu(CPUStat.newBuilder().setUsageUsec(96_596).setUserUsec(10_000).setSystemUsec(80_000)
                        .setNrPeriods(50).setNrThrottled(5).setThrottledUsec(1_500))
                .setMemory(MemoryStat.newBuilder().setUsage(17_870_848).setUsageLimit(64L << 20)
                        .setFile(16L << 20).setAnon(233_472))
                .setIo(IOStat.newBuilder()
                        .addUsage(IOEntry.newBuilder().setMajor(8).setRbytes(4096).setWbytes(8192).setRios(1)
                                .setWios(2))
                        .addUsage(IOEntry.newBuilder().setMajor(259).setRbytes(1000).setWbytes(3000).setRios(3)
                                .setWios(4)))
                .build();
        Stats raw = new Stats("type.googleapis.com/" + CgroupV2Metrics.TYPE, metrics.toByteArray());

        ContainerStats stats = CgroupV2Metrics.decode(raw);

        assertThat(stats.cpu()).isEqualTo(new ContainerStats.Cpu(96_596_000, 10_000_000, 80_000_000,
                OptionalLong.of(5), OptionalLong.of(1_500_000)));
        assertThat(stats.memory()).isEqualTo(new ContainerStats.Memory(17_870_848, OptionalLong.of(64L << 20),
                OptionalLong.empty(), OptionalLong.of(16L << 20), OptionalLong.of(233_472)));
        assertThat(stats.pids()).isEqualTo(new ContainerStats.Pids(4, OptionalLong.of(32)));
        assertThat(stats.blockIo()).isEqualTo(new ContainerStats.BlockIo(5096, 11192, 4, 6));
        assertThat(stats.raw()).isSameAs(raw);
    }

    @Test
    void maxIsNoLimit() throws Exception {
        Metrics metrics = Metrics.newBuilder()
                .setPids(PidsStat.newBuilder().setCurrent(1).setLimit(-1))
                .setMemory(MemoryStat.newBuilder().setUsage(4096).setUsageLimit(-1).setMaxUsage(8192))
                .build();

        ContainerStats stats = CgroupV2Metrics.decode(new Stats(CgroupV2Metrics.TYPE, metrics.toByteArray()));

        assertThat(stats.memory().limitBytes()).isEmpty();
        assertThat(stats.memory().maxUsageBytes()).hasValue(8192);
        assertThat(stats.pids().limit()).isEmpty();
        assertThat(stats.cpu().throttledNanos()).isEmpty();
        assertThat(stats.blockIo()).isEqualTo(new ContainerStats.BlockIo(0, 0, 0, 0));
    }

    @Test
    void noMemorySectionIsNoLimitNotZero() throws Exception {
        Metrics metrics = Metrics.newBuilder().setPids(PidsStat.newBuilder().setCurrent(1)).build();

        ContainerStats stats = CgroupV2Metrics.decode(new Stats(CgroupV2Metrics.TYPE, metrics.toByteArray()));

        assertThat(stats.memory()).isEqualTo(new ContainerStats.Memory(0, OptionalLong.empty(), OptionalLong.empty(),
                OptionalLong.empty(), OptionalLong.empty()));
    }
}
