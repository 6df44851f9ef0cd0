package org.shimmer.runtime.linux.image;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.testing.OciLayouts;

/** {@code LinuxRuntime.images()}: the store at the config's image root, shared by the views of that root. */
class RuntimeImagesTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    @TempDir
    Path temp;

    private RuntimeResources resources;

    @BeforeEach
    void start() {
        resources = new RuntimeResources("images-test-");
    }

    @AfterEach
    void stop() {
        resources.close();
    }

    @Test
    void viewsOfOneImageRootSeeOneStore() throws IOException {
        RuntimeConfig config = new RuntimeConfig(temp.resolve("state"), temp.resolve("work"));
        RuntimePlugin runtime = new LinuxRuntime(config, resources);
        Path layout = OciLayouts.layout().tagged(OciLayouts.image().layer(OciLayouts.tar("x", "x")), "v1")
                .writeDirectory(temp.resolve("app"));

        Image imported = runtime.images().importLayout(layout).block(TIMEOUT);

        assertThat(temp.resolve("work-images/images")).as("the default root, beside the work root").isDirectory();
        assertThat(runtime.withConfig(config.withStateRoot(temp.resolve("state2"))).images().list().collectList()
                .block(TIMEOUT)).containsExactly(imported);
        assertThat(runtime.withConfig(config.withImageRoot(temp.resolve("other"))).images().list().collectList()
                .block(TIMEOUT)).isEmpty();
    }
}
