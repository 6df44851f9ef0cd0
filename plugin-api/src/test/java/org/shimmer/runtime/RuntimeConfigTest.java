package org.shimmer.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class RuntimeConfigTest {

    @Test
    void theImageRootDefaultsBesideTheWorkRootAndFollowsIt() {
        assertThat(RuntimeConfig.defaults().imageRoot()).isEqualTo(Path.of("/var/lib/shimmer-images"));
        RuntimeConfig moved = RuntimeConfig.defaults().withWorkRoot(Path.of("/data/work"));
        assertThat(moved.imageRoot()).isEqualTo(Path.of("/data/work-images"));
    }

    @Test
    void aGivenImageRootStaysWhenTheWorkRootMoves() {
        RuntimeConfig config = RuntimeConfig.defaults().withImageRoot(Path.of("/images/../images2"));
        assertThat(config.imageRoot()).isEqualTo(Path.of("/images2"));
        assertThat(config.withWorkRoot(Path.of("/elsewhere")).imageRoot()).isEqualTo(Path.of("/images2"));
        assertThat(config.withStateRoot(Path.of("/run/x")).imageRoot()).isEqualTo(Path.of("/images2"));
    }
}
