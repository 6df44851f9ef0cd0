package org.shimmer.runtime.linux.bundle;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** {@link ShimStarts}: a bundle's delete and the starts of its shim exclude each other, and nothing else. */
class ShimStartsTest {

    private final Path bundle = Path.of("/state/ns/shim-starts-test-" + System.nanoTime());
    private final Path other = Path.of("/state/ns/shim-starts-other-" + System.nanoTime());

    @Test
    void aDeleteIsRefusedWhileAnyStartRunsAndAStartWhileAnyDeleteRuns() {
        assertThat(ShimStarts.begin(bundle)).isTrue();
        assertThat(ShimStarts.begin(bundle)).as("a second start at once").isTrue();
        assertThat(ShimStarts.beginDelete(bundle)).as("a delete while two starts run").isFalse();
        assertThat(ShimStarts.beginDelete(other)).as("another bundle's delete").isTrue();
        ShimStarts.endDelete(other);

        ShimStarts.end(bundle);
        assertThat(ShimStarts.beginDelete(bundle)).as("a delete while one start runs").isFalse();
        ShimStarts.end(bundle);
        assertThat(ShimStarts.beginDelete(bundle)).as("a delete once both ended").isTrue();

        assertThat(ShimStarts.begin(bundle)).as("a start while the delete runs").isFalse();
        assertThat(ShimStarts.begin(other)).as("another bundle's start").isTrue();
        ShimStarts.end(other);
        assertThat(ShimStarts.beginDelete(bundle)).as("a second delete at once (a retry, a force delete)").isTrue();
        ShimStarts.endDelete(bundle);
        assertThat(ShimStarts.begin(bundle)).as("a start while the other delete still runs").isFalse();
        ShimStarts.endDelete(bundle);
        assertThat(ShimStarts.begin(bundle)).as("a start once both deletes ended").isTrue();
        ShimStarts.end(bundle);
    }
}
