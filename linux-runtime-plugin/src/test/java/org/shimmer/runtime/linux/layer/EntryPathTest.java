package org.shimmer.runtime.linux.layer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Tar names to layer paths: pure logic, so a table. */
class EntryPathTest {

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "./etc/passwd | etc/passwd",
        "etc/passwd   | etc/passwd",
        "./././a      | a",
        "a//b/./c/    | a/b/c",
        "./           | .",
        ".            | .",
        "dir/         | dir",
    })
    void namesBecomePathsInsideTheLayer(String name, String path) throws Refusal {
        assertThat(EntryPath.parse(name, "name")).hasToString(path);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "../x         | name has a \"..\" segment",
        "a/../../x    | name has a \"..\" segment",
        "a/..         | name has a \"..\" segment",
        "/etc/passwd  | name is absolute",
        "//x          | name is absolute",
        "a\u0000b     | name contains a NUL byte",
        "bad\uFFFDutf | name is not valid UTF-8",
    })
    void hostileNamesAreRefusedNotCleaned(String name, String reason) {
        assertThatThrownBy(() -> EntryPath.parse(name, "name")).isInstanceOf(Refusal.class).hasMessage(reason);
    }

    @Test
    void emptyNameIsRefused() {
        assertThatThrownBy(() -> EntryPath.parse("", "link target")).hasMessage("link target is empty");
    }

    @Test
    void containsIsByComponentNotByText() throws Refusal {
        EntryPath dir = EntryPath.parse("usr/lib", "name");
        assertThat(dir.contains(EntryPath.parse("usr/lib/x", "name"))).isTrue();
        assertThat(dir.contains(dir)).isTrue();
        assertThat(dir.contains(EntryPath.parse("usr/lib64", "name"))).isFalse();
        assertThat(dir.parent()).isEqualTo(List.of("usr"));
        assertThat(dir.sibling("bin")).hasToString("usr/bin");
    }
}
