package org.shimmer.runtime.linux.stats;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.shim.ContainerStats;
import org.shimmer.runtime.shim.Stats;

class RuncStatsTest {

    @Test
    void decodesWhatRuncReportedOnThisCgroupV1Host() throws Exception {
        Stats raw = Samples.load(RuncStats.TYPE, "runc-stats-cgroup-v1.json");

        ContainerStats stats = RuncStats.decode(raw);

        assertThat(stats.cpu()).isEqualTo(new ContainerStats.Cpu(81_465_035, 20_000_000, 60_000_000,
                OptionalLong.of(0), OptionalLong.of(0)));
        assertThat(stats.memory()).isEqualTo(new ContainerStats.Memory(17_707_008, OptionalLong.of(64L << 20),
                OptionalLong.of(18_399_232), OptionalLong.of(16L << 20), OptionalLong.of(225_280)));
        assertThat(stats.pids()).isEqualTo(new ContainerStats.Pids(4, OptionalLong.of(32)));
        assertThat(stats.blockIo()).isEqualTo(new ContainerStats.BlockIo(0, 0, 0, 0));
        assertThat(stats.raw()).isSameAs(raw);
    }

    @Test
    void decodesTheCgroupV2Shape() throws Exception {
        ContainerStats stats = RuncStats.decode(Samples.load(RuncStats.TYPE, "runc-stats-cgroup-v2.json"));

        assertThat(stats.cpu()).isEqualTo(new ContainerStats.Cpu(1_500_000_000, 1_000_000_000, 500_000_000,
                OptionalLong.of(3), OptionalLong.of(25_000_000)));
        assertThat(stats.memory()).isEqualTo(new ContainerStats.Memory(41_943_040, OptionalLong.empty(),
                OptionalLong.empty(), OptionalLong.of(32L << 20), OptionalLong.of(8L << 20)));
        assertThat(stats.pids()).isEqualTo(new ContainerStats.Pids(7, OptionalLong.empty()));
        assertThat(stats.blockIo()).isEqualTo(new ContainerStats.BlockIo(12_288, 3L << 20, 3, 48));
    }

    @Test
    void anEventWithoutDataIsAnError() {
        Stats raw = new Stats(RuncStats.TYPE, "{\"type\":\"oom\",\"id\":\"c\"}".getBytes(StandardCharsets.UTF_8));

        assertThatThrownBy(() -> RuncStats.decode(raw)).isInstanceOf(IOException.class).hasMessageContaining("data");
    }
}
