package org.shimmer.runtime.linux.plugin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.UnavailableException;

/** Issue 11: a runtime asked for before the plugin started, or after it stopped, is unavailable, typed. */
class LinuxRuntimePluginTest {

    @Test
    void resourcesOfAPluginNotStartedAreUnavailable() {
        assertThatThrownBy(LinuxRuntimePlugin::resources)
                .isInstanceOfSatisfying(UnavailableException.class, unavailable -> assertThat(unavailable.code())
                        .isEqualTo(ErrorCode.UNAVAILABLE))
                .hasMessageContaining("not started");
    }
}
