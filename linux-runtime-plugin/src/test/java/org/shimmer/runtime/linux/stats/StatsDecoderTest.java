package org.shimmer.runtime.linux.stats;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.google.protobuf.InvalidProtocolBufferException;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.linux.stats.proto.v2.Metrics;
import org.shimmer.runtime.linux.stats.proto.v2.PidsStat;
import org.shimmer.runtime.shim.ShimException;
import org.shimmer.runtime.shim.Stats;

class StatsDecoderTest {

    @Test
    void picksTheDecoderByType() {
        assertThat(StatsDecoder.decode(Samples.load(CgroupV1Metrics.TYPE, "cgroup-v1-metrics.pb")).pids().current())
                .isEqualTo(4);
        assertThat(StatsDecoder.decode(Samples.load(RuncStats.TYPE, "runc-stats-cgroup-v2.json")).pids().current())
                .isEqualTo(7);
        byte[] v2 = Metrics.newBuilder().setPids(PidsStat.newBuilder().setCurrent(9)).build().toByteArray();
        assertThat(StatsDecoder.decode(new Stats("type.googleapis.com/" + CgroupV2Metrics.TYPE, v2)).pids()
                .current()).isEqualTo(9);
    }

    @Test
    void anUnknownTypeIsAShimErrorNamingIt() {
        assertThatThrownBy(() -> StatsDecoder.decode(new Stats("io.containerd.cgroups.v3.Metrics", new byte[0])))
                .isInstanceOf(ShimException.class).hasMessageContaining("io.containerd.cgroups.v3.Metrics");
    }

    @Test
    void anUndecodableValueIsAShimErrorWithItsCause() {
        assertThatThrownBy(() -> StatsDecoder.decode(new Stats(CgroupV1Metrics.TYPE, new byte[] {(byte) 0xff})))
                .isInstanceOf(ShimException.class).hasMessageContaining(CgroupV1Metrics.TYPE)
                .hasCauseInstanceOf(InvalidProtocolBufferException.class);
        assertThatThrownBy(() -> StatsDecoder.decode(
                        new Stats(RuncStats.TYPE, "not json".getBytes(StandardCharsets.UTF_8))))
                .isInstanceOf(ShimException.class).hasMessageContaining(RuncStats.TYPE)
                .hasCauseInstanceOf(JsonProcessingException.class);
    }
}
