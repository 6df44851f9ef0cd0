package org.shimmer.runtime.linux.stats;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.OptionalLong;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.linux.stats.proto.v1.BlkIOEntry;
import org.shimmer.runtime.linux.stats.proto.v1.BlkIOStat;
import org.shimmer.runtime.linux.stats.proto.v1.MemoryEntry;
import org.shimmer.runtime.linux.stats.proto.v1.MemoryStat;
import org.shimmer.runtime.linux.stats.proto.v1.Metrics;
import org.shimmer.runtime.linux.stats.proto.v1.PidsStat;
import org.shimmer.runtime.shim.ContainerStats;
import org.shimmer.runtime.shim.Stats;

class CgroupV1MetricsTest {

    @Test
    void decodesWhatTheShimReportedOnThisHost() throws Exception {
        Stats raw = Samples.load(CgroupV1Metrics.TYPE, "cgroup-v1-metrics.pb");

        ContainerStats stats = CgroupV1Metrics.decode(raw);

        assertThat(stats.cpu()).isEqualTo(new ContainerStats.Cpu(96_596_576, 10_000_000, 80_000_000,
                OptionalLong.of(0), OptionalLong.of(0)));
        assertThat(stats.memory()).isEqualTo(new ContainerStats.Memory(17_870_848, OptionalLong.of(64L << 20),
                OptionalLong.of(18_558_976), OptionalLong.of(16L << 20), OptionalLong.of(233_472)));
        assertThat(stats.pids()).isEqualTo(new ContainerStats.Pids(4, OptionalLong.of(32)));
        assertThat(stats.blockIo()).isEqualTo(new ContainerStats.BlockIo(0, 0, 0, 0));
        assertThat(stats.raw()).isSameAs(raw);
    }

    @Test
    void sumsReadsAndWritesOverDevicesAndReadsNoLimitsAsEmpty() throws Exception {
        // v1's "unlimited" memory limit is the largest page-aligned long; pids.max "max" is reported as 0.
        Metrics metrics = Metrics.newBuilder()
                .setMemory(MemoryStat.newBuilder().setUsage(MemoryEntry.newBuilder()
                        .setLimit(9_223_372_036_854_771_712L).setUsage(4096)))
                .setPids(PidsStat.newBuilder().setCurrent(2))
                .setBlkio(BlkIOStat.newBuilder()
                        .addIoServiceBytesRecursive(entry(8, "Read", 100))
                        .addIoServiceBytesRecursive(entry(8, "Write", 200))
                        .addIoServiceBytesRecursive(entry(8, "Total", 300))
                        .addIoServiceBytesRecursive(entry(253, "Read", 1000))
                        .addIoServiceBytesRecursive(entry(253, "Write", 2000))
                        .addIoServiceBytesRecursive(entry(253, "Sync", 2000))
                        .addIoServicedRecursive(entry(8, "Read", 1))
                        .addIoServicedRecursive(entry(8, "Write", 2))
                        .addIoServicedRecursive(entry(253, "Read", 3))
                        .addIoServicedRecursive(entry(253, "Total", 7)))
                .build();

        ContainerStats stats = CgroupV1Metrics.decode(new Stats(CgroupV1Metrics.TYPE, metrics.toByteArray()));

        assertThat(stats.memory().limitBytes()).isEmpty();
        assertThat(stats.memory().maxUsageBytes()).isEmpty();
        assertThat(stats.pids().limit()).isEmpty();
        assertThat(stats.blockIo()).isEqualTo(new ContainerStats.BlockIo(1100, 2200, 4, 2));
        assertThat(stats.cpu().throttledPeriods()).isEmpty();
    }

    @Test
    void noMemorySectionIsNoLimitNotZero() throws Exception {
        Metrics withoutMemory = Metrics.newBuilder().setPids(PidsStat.newBuilder().setCurrent(1)).build();
        Metrics withoutUsage = Metrics.newBuilder().setMemory(MemoryStat.newBuilder().setTotalRss(4096)).build();

        for (Metrics metrics : new Metrics[] {withoutMemory, withoutUsage}) {
            ContainerStats stats = CgroupV1Metrics.decode(new Stats(CgroupV1Metrics.TYPE, metrics.toByteArray()));

            assertThat(stats.memory().limitBytes()).isEmpty();
            assertThat(stats.memory().maxUsageBytes()).isEmpty();
        }
    }

    private static BlkIOEntry entry(int major, String op, long value) {
        return BlkIOEntry.newBuilder().setMajor(major).setOp(op).setValue(value).build();
    }
}
