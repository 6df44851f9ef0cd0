package org.shimmer.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.image.ImageConfig;
import org.shimmer.runtime.spec.Spec;

class RunRequestTest {

    private static final Image IMAGE = new Image("busybox:latest", "sha256:" + "a".repeat(64),
            new ImageConfig(List.of("/bin/sh"), List.of("-c", "true"), List.of("A=1"), "/w", "app", Map.of()),
            List.of("sha256:" + "b".repeat(64)), 1024, Instant.EPOCH);

    @Test
    void aRequestIsFromADirectoryOrFromAnImage() {
        RunRequest fromDir = RunRequest.of("ns", "c1", Spec.defaults(), Path.of("rootfs"));
        assertThat(fromDir.rootfs()).isAbsolute();
        assertThat(fromDir.image()).isNull();
        RunRequest fromImage = RunRequest.of("ns", "c1", Spec.defaults(), IMAGE);
        assertThat(fromImage.rootfs()).isNull();
        assertThat(fromImage.image()).isEqualTo(IMAGE);
        assertThat(fromImage.entrypoint()).isNull();
        assertThat(fromImage.toString()).contains("image=busybox:latest");
    }

    @Test
    void anEntrypointReplacesTheImagesAndSurvivesOtherChanges() {
        RunRequest request = RunRequest.of("ns", "c1", Spec.defaults(), IMAGE).withEntrypoint("/bin/env")
                .withOutputBuffer(10);
        assertThat(request.entrypoint()).containsExactly("/bin/env");
        assertThat(request.withEntrypoint().entrypoint()).isEmpty();
    }

    @Test
    void anEntrypointNeedsAnImage() {
        RunRequest fromDir = RunRequest.of("ns", "c1", Spec.defaults(), Path.of("rootfs"));
        assertThatThrownBy(() -> fromDir.withEntrypoint("/bin/sh"))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("ns/c1");
    }

    @Test
    void aNullEntrypointWordIsNamed() {
        RunRequest request = RunRequest.of("ns", "c1", Spec.defaults(), IMAGE);
        assertThatThrownBy(() -> request.withEntrypoint("/bin/sh", null))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("entrypoint[1] is null");
        assertThatThrownBy(() -> request.withEntrypoint((String[]) null))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("entrypoint is null");
    }

    @Test
    void aNullImageIsNamed() {
        assertThatThrownBy(() -> RunRequest.of("ns", "c1", Spec.defaults(), (Image) null))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("image is null");
    }
}
