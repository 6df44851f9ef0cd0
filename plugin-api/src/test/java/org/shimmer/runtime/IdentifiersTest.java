package org.shimmer.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.NullAndEmptySource;
import org.junit.jupiter.params.provider.ValueSource;

class IdentifiersTest {

    @ParameterizedTest
    @ValueSource(strings = {"a", "default", "k8s.io", "a_b", "a-b", "A1.b2_c3-d4", "0"})
    void acceptsContainerdIdentifiers(String id) {
        assertThat(Identifiers.requireValid("id", id)).isEqualTo(id);
        assertThat(Identifiers.isValid(id)).isTrue();
    }

    @org.junit.jupiter.api.Test
    void acceptsExactlyTheMaximumLength() {
        assertThat(Identifiers.isValid("x".repeat(76))).isTrue();
        assertThat(Identifiers.isValid("x".repeat(77))).isFalse();
    }

    @ParameterizedTest
    @NullAndEmptySource
    @ValueSource(strings = {"../x", "a/b", ".hidden", "..", ".", "a..b", "a.-b", "-a", "a-", "a_", "_a", "a b",
            "é", "a:b", "/abs"})
    void rejectsAndNamesTheBadValue(String id) {
        assertThatThrownBy(() -> Identifiers.requireValid("id", id))
                .isInstanceOf(InvalidIdentifierException.class)
                .hasMessageStartingWith("invalid id " + (id == null ? "null" : "\"" + id + "\""))
                .satisfies(e -> assertThat(((InvalidIdentifierException) e).value()).isEqualTo(id));
        assertThat(Identifiers.isValid(id)).isFalse();
    }

    /** A bad id is shown on one line, unambiguous: a newline printed as is split the message (the CLI joined it). */
    @org.junit.jupiter.api.Test
    void aBadValueIsShownEscapedOnOneLine() {
        String[][] shown = {{"a\nb", "\"a\\nb\""}, {"a\u0000b", "\"a\\u0000b\""}, {"a\r\tb", "\"a\\r\\tb\""},
                {"a\"; b", "\"a\\\"; b\""}, {"a\\n", "\"a\\\\n\""}, {"x\u202Ey", "\"x\\u202ey\""},
                {"\u001b[31m", "\"\\u001b[31m\""}};
        for (String[] pair : shown) {
            assertThatThrownBy(() -> Identifiers.requireValid("id", pair[0]))
                    .isInstanceOfSatisfying(InvalidIdentifierException.class, e -> {
                        assertThat(e.getMessage()).startsWith("invalid id " + pair[1] + ": ").doesNotContain("\n");
                        assertThat(e.value()).isEqualTo(pair[0]);
                    });
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {77, 200, 5000})
    void rejectsTooLong(int length) {
        String id = "a".repeat(length);
        assertThatThrownBy(() -> Identifiers.requireValid("namespace", id))
                .isInstanceOf(InvalidIdentifierException.class)
                .hasMessageContaining("invalid namespace \"" + id + "\"")
                .hasMessageContaining("maximum of 76");
    }
}
