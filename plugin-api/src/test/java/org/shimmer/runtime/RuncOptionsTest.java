package org.shimmer.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class RuncOptionsTest {

    @Test
    void theDefaultRuntimeRootIsHiddenUnderEachStateRoot() {
        RuncOptions defaults = RuncOptions.defaults();

        assertThat(defaults.effectiveRuntimeRoot(Path.of("/run/a"))).isEqualTo("/run/a/.shimmer/runc");
        assertThat(defaults.resolvedFor(Path.of("/run/b")).runtimeRoot()).isEqualTo("/run/b/.shimmer/runc");
        assertThat(Identifiers.isValid(".shimmer")).as("never taken for a namespace").isFalse();
    }

    @Test
    void aGivenRuntimeRootIsKeptWhateverTheStateRoot() {
        RuncOptions given = RuncOptions.defaults().withRuntimeRoot("/var/lib/my-runc").withBinaryName("crun");

        assertThat(given.resolvedFor(Path.of("/run/a"))).isEqualTo(given);
        assertThat(given.effectiveRuntimeRoot(Path.of("/run/a"))).isEqualTo("/var/lib/my-runc");
    }
}
