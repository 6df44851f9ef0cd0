package org.shimmer.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class HumanUnitsTest {

    @Test
    void bytesUseBinaryUnitsWithOneDecimal() {
        assertThat(HumanUnits.bytes(0)).isEqualTo("0B");
        assertThat(HumanUnits.bytes(1023)).isEqualTo("1023B");
        assertThat(HumanUnits.bytes(1024)).isEqualTo("1.0KiB");
        assertThat(HumanUnits.bytes(1536)).isEqualTo("1.5KiB");
        assertThat(HumanUnits.bytes(12_897_485)).isEqualTo("12.3MiB");
        assertThat(HumanUnits.bytes(3L << 30)).isEqualTo("3.0GiB");
        assertThat(HumanUnits.bytes(Long.MAX_VALUE)).isEqualTo("8.0EiB");
    }

    @Test
    void cpuTimeReadsAsSecondsAndItsShareAsPercentOfOneCpu() {
        assertThat(HumanUnits.seconds(1_234_000_000L)).isEqualTo("1.234s");
        assertThat(HumanUnits.seconds(0)).isEqualTo("0.000s");
        assertThat(HumanUnits.percent(500_000_000L, 1_000_000_000L)).isEqualTo("50.0%");
        assertThat(HumanUnits.percent(2_500_000_000L, 1_000_000_000L)).isEqualTo("250.0%");
        assertThat(HumanUnits.percent(1, 0)).as("no interval").isEqualTo("0.0%");
    }
}
