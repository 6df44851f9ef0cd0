package org.shimmer.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import picocli.CommandLine.TypeConversionException;

class ByteSizeTest {

    private final ByteSize size = new ByteSize();

    @Test
    void takesDockersUnitsWithAnOptionalBInEitherCase() {
        assertThat(size.convert("4096")).isEqualTo(4096L);
        assertThat(size.convert("4096b")).isEqualTo(4096L);
        assertThat(size.convert("8k")).isEqualTo(8L << 10);
        assertThat(size.convert("64m")).isEqualTo(64L << 20);
        assertThat(size.convert("64mb")).isEqualTo(64L << 20);
        assertThat(size.convert("64MB")).isEqualTo(64L << 20);
        assertThat(size.convert("64M")).isEqualTo(64L << 20);
        assertThat(size.convert("2g")).isEqualTo(2L << 30);
        assertThat(size.convert("1t")).isEqualTo(1L << 40);
        assertThat(size.convert("1TB")).isEqualTo(1L << 40);
    }

    @Test
    void takesFractions() {
        assertThat(size.convert("1.5g")).isEqualTo(3L << 29);
        assertThat(size.convert("0.5m")).isEqualTo(512L << 10);
        assertThat(size.convert(".5k")).isEqualTo(512L);
        assertThat(size.convert("1.5")).as("a fraction of a byte is dropped").isEqualTo(1L);
    }

    @Test
    void refusesWhatIsNoPositiveSize() {
        for (String bad : new String[] {"", "m", "-1m", "0", "0.1", "1x", "1mbb", "1.m", "1 m", "1e3", "99999999t"}) {
            assertThatThrownBy(() -> size.convert(bad)).as(bad).isInstanceOf(TypeConversionException.class);
        }
    }
}
