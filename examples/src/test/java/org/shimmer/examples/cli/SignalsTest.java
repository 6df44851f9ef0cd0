package org.shimmer.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

class SignalsTest {

    @Test
    void namesWithOrWithoutSigInAnyCaseAndNumbersAllParse() {
        for (String term : List.of("TERM", "SIGTERM", "sigterm", "term", "15", " SigTerm ")) {
            assertThat(Signals.parse(term)).as(term).isEqualTo(15);
        }
        assertThat(Signals.parse("KILL")).isEqualTo(9);
        assertThat(Signals.parse("SIGHUP")).isEqualTo(1);
        assertThat(Signals.parse("winch")).isEqualTo(28);
        assertThat(Signals.parse("SIGIOT")).isEqualTo(6);
        assertThat(Signals.parse("64")).isEqualTo(64);
    }

    @Test
    void anUnknownSignalIsRefusedNamingItWithExamples() {
        for (String bad : List.of("TERMINATE", "SIG", "", "0", "65", "-9", "99999999999", "9x")) {
            assertThatThrownBy(() -> Signals.parse(bad)).as(bad)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("unknown signal '" + bad + "'")
                    .hasMessageContaining("TERM, SIGTERM, sigkill, 15");
        }
    }

    @Test
    void numbersPrintAsNamesAndNamelessOnesAsNumbers() {
        assertThat(Signals.name(15)).isEqualTo("SIGTERM");
        assertThat(Signals.name(9)).isEqualTo("SIGKILL");
        assertThat(Signals.name(31)).isEqualTo("SIGSYS");
        assertThat(Signals.name(40)).isEqualTo("40");
        for (int number = 1; number <= 31; number++) {
            assertThat(Signals.parse(Signals.name(number))).isEqualTo(number);
        }
    }
}
