package org.shimmer.runtime.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.NullAndEmptySource;
import org.junit.jupiter.params.provider.ValueSource;
import org.shimmer.runtime.InvalidIdentifierException;

class ImageNamesTest {

    @ParameterizedTest
    @CsvSource({
        "busybox, busybox:latest",
        "busybox:1.36, busybox:1.36",
        "library/busybox:v1, library/busybox:v1",
        "docker.io/library/busybox:latest, docker.io/library/busybox:latest",
        "localhost:5000/app, localhost:5000/app:latest",
        "localhost:5000/app:7, localhost:5000/app:7",
        "localhost/app:x_Y.z-1, localhost/app:x_Y.z-1",
        "a__b/c-d/e.f:latest, a__b/c-d/e.f:latest",
        "reg.example:443/team/app, reg.example:443/team/app:latest",
    })
    void normalizesWithTheDefaultTag(String name, String normalized) {
        assertThat(ImageNames.normalize(name)).isEqualTo(normalized);
        assertThat(ImageNames.isValid(name)).isTrue();
    }

    @ParameterizedTest
    @NullAndEmptySource
    @ValueSource(strings = {"Busybox", "busybox:", "busybox:.x", "busybox:-x", "a//b", "/abs", "a/", "../x",
            "a..b", "a_-b", "app@sha256:abc", "a b", "busybox:a/b", "bad_host:5000/app:1"})
    void rejectsAndNamesTheBadValue(String name) {
        assertThatThrownBy(() -> ImageNames.normalize(name))
                .isInstanceOf(InvalidIdentifierException.class)
                .hasMessageStartingWith("invalid image name " + (name == null ? "null" : "\"" + name + "\""));
        assertThat(ImageNames.isValid(name)).isFalse();
    }

    @Test
    void aBadNameIsShownEscapedOnOneLine() {
        assertThatThrownBy(() -> ImageNames.normalize("a\nb"))
                .isInstanceOf(InvalidIdentifierException.class)
                .hasMessage("invalid image name \"a\\nb\": path component \"a\\nb\" is not lower-case letters and"
                        + " digits joined by '.', '_', '__' or dashes");
        assertThatThrownBy(() -> ImageNames.normalize("busybox:a\tb"))
                .isInstanceOf(InvalidIdentifierException.class).hasMessageContaining("tag \"a\\tb\"");
    }

    @Test
    void boundsTagAndRepositoryLengths() {
        assertThat(ImageNames.isValid("a:" + "t".repeat(128))).isTrue();
        assertThat(ImageNames.isValid("a:" + "t".repeat(129))).isFalse();
        assertThat(ImageNames.isValid("a".repeat(255))).isTrue();
        assertThat(ImageNames.isValid("a".repeat(256))).isFalse();
    }
}
