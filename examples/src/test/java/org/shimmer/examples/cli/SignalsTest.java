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
        for (String bad : List.of("TERMINATE", "SIG", "", "-9", "9x", "STKFLT")) {
            assertThatThrownBy(() -> Signals.parse(bad)).as(bad)
                    .isInstanceOf(CliException.class)
                    .hasMessage("invalid signal " + bad + ": a name such as TERM, SIGTERM, sigkill or HUP, or a"
                            + " number such as 15 or 9");
        }
        for (String bad : List.of("0", "65", "99999999999", "009")) {
            assertThatThrownBy(() -> Signals.parse(bad)).as(bad)
                    .isInstanceOf(CliException.class)
                    .hasMessage("invalid signal " + bad + ": numbers go from 1 to 64");
        }
    }

    @Test
    void numbersPrintAsNamesAndNamelessOnesAsNumbers() {
        assertThat(Signals.name(15)).isEqualTo("SIGTERM");
        assertThat(Signals.name(9)).isEqualTo("SIGKILL");
        assertThat(Signals.name(31)).isEqualTo("SIGSYS");
        assertThat(Signals.name(40)).isEqualTo("40");
        for (int number : List.of(1, 2, 3, 6, 9, 15, 17, 19, 28, 29, 31)) {
            assertThat(Signals.parse(Signals.name(number))).isEqualTo(number);
        }
    }
}
