package org.shimmer.runtime.linux.image;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.linux.testing.OciLayouts;

/**
 * A layer's files reach the disk before it is named: an import, traced by {@code strace} in a child JVM, calls
 * {@code syncfs} before each rename into {@code layers/}. Without it, a power loss after the (synced) record could
 * leave a layer directory with empty files under a name that says it is complete.
 */
class LayerSyncTest {

    @TempDir
    Path temp;

    @Test
    void eachLayerIsSyncedBeforeItsRenameIntoLayers() throws Exception {
        OciLayouts.Image image = OciLayouts.image().layer(OciLayouts.tar("a", "a")).layer(OciLayouts.tar("b", "b"));
        Path layout = OciLayouts.layout().tagged(image, "v1").writeDirectory(temp.resolve("two"));
        Path root = temp.resolve("images");
        Path trace = temp.resolve("strace.log");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process child = new ProcessBuilder("strace", "-f", "--seccomp-bpf", "-e",
                "trace=syncfs,rename,renameat,renameat2", "-o", trace.toString(), java.toString(),
                "--enable-native-access=ALL-UNNAMED", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp",
                System.getProperty("java.class.path"), ImportKillTest.ImportingChild.class.getName(),
                root.toString(), layout.toString())
                .redirectOutput(temp.resolve("child.out").toFile())
                .redirectError(temp.resolve("child.log").toFile())
                .start();
        try {
            assertThat(child.waitFor(60, TimeUnit.SECONDS)).as("the traced import ends").isTrue();
        } finally {
            child.destroyForcibly();
        }
        assertThat(child.exitValue()).as("the traced import (log: %s)", temp.resolve("child.log")).isZero();

        List<String> calls = Files.readAllLines(trace).stream()
                .filter(line -> line.contains("syncfs(") || line.contains("/layers/"))
                .toList();
        for (int i = 0; i < 2; i++) {
            String hex = image.chainId(i).substring("sha256:".length());
            int rename = indexOf(calls, "/layers/" + hex + "\"");
            assertThat(rename).as("the rename of layer %d in %s", i, calls).isPositive();
            assertThat(calls.get(rename - 1)).as("the call before the rename of layer %d", i)
                    .contains("syncfs").contains("= 0");
        }
        assertThat(ImageStoreTest.names(root.resolve("layers"))).hasSize(2);
    }

    private static int indexOf(List<String> calls, String text) {
        for (int i = 0; i < calls.size(); i++) {
            if (calls.get(i).contains(text)) {
                return i;
            }
        }
        return -1;
    }
}
