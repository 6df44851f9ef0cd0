package org.shimmer.examples.host;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.OutputStream;
import java.lang.ref.WeakReference;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pf4j.PluginRuntimeException;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.shim.TaskState;

/**
 * Reloads that must not happen: the zip replaced by one that is no zip, by one cut short, by one built for the
 * next API. Each is refused naming the zip before the running plugin is touched, so the container started through
 * it stays reachable; a good zip then reloads as usual.
 */
class HotReloadRefusalIntegrationTests {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "refusal";
    private static final String ID = "survivor";

    @TempDir
    Path temp;

    private Path pluginsDir;
    private Path zip;
    private PluginHost host;
    private RuntimeConfig config;
    private LongRunner survivor;

    @BeforeEach
    void setUp() throws IOException {
        pluginsDir = Files.createDirectories(temp.resolve("plugins"));
        zip = pluginsDir.resolve(builtZip().getFileName());
        Files.copy(builtZip(), zip);
        config = new RuntimeConfig(temp.resolve("state"), temp.resolve("work"));
        survivor = new LongRunner(NS, ID, BusyboxRootfs.write(temp.resolve("image")), temp.resolve("daemon"),
                RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString()));
        host = PluginHost.start(pluginsDir);
    }

    @AfterEach
    void tearDown() throws IOException {
        host.close();
        // A failed test may have lost its plugin with the survivor running: a host of its own removes it.
        Path spare = Files.createDirectories(temp.resolve("spare-plugins"));
        Files.copy(builtZip(), spare.resolve(builtZip().getFileName()));
        try (PluginHost cleaner = PluginHost.start(spare)) {
            RuntimePlugin runtime = cleaner.runtime().withConfig(config);
            if (runtime.list(NS).any(bundle -> bundle.id().equals(ID)).block(TIMEOUT)) {
                runtime.forceDelete(NS, ID).block(TIMEOUT);
            }
        }
        assertThat(StateRootCgroups.removeEmptyAndListLeft(temp.resolve("state"))).as("container cgroups").isEmpty();
    }

    @Test
    void aBrokenZipOrOneForAnotherApiIsRefusedAndTheRunningPluginStays() throws Exception {
        int pid = survivor.start(runtime());
        WeakReference<ClassLoader> loaded = new WeakReference<>(pluginLoader());

        putInPlace(Files.write(temp.resolve("staged.zip"), "no zip at all".getBytes(StandardCharsets.UTF_8)));
        assertThatThrownBy(() -> host.reload(zip)).isInstanceOf(PluginRuntimeException.class)
                .hasMessageContaining(zip.toString()).hasMessageContaining("no zip");
        assertStillServing(loaded, pid);

        putInPlace(cutShort(builtZip()));
        assertThatThrownBy(() -> host.reload(zip)).isInstanceOf(PluginRuntimeException.class)
                .hasMessageContaining(zip.toString()).hasMessageContaining("cannot be read whole");
        assertStillServing(loaded, pid);

        String newer = "^" + nextMinor(RuntimePlugin.API_VERSION);
        putInPlace(withRequires(newer));
        assertThatThrownBy(() -> host.reload(zip)).isInstanceOf(IncompatiblePluginException.class)
                .hasMessageContaining("requires API " + newer);
        assertStillServing(loaded, pid);

        putInPlace(copyOfBuiltZip());
        assertThat(host.reload(zip).newVersion()).isEqualTo(host.started().getFirst().getDescriptor().getVersion());
        assertThat(survivor.reattach(runtime()).pid()).as("the survivor after a good reload").isEqualTo(pid);
        awaitCollected(loaded);

        survivor.stop(runtime());
        assertNothingLeft();
    }

    /** The same plugin, from the same class loader, still reaches the container. */
    private void assertStillServing(WeakReference<ClassLoader> loaded, int pid) {
        assertThat(host.started()).as("started plugins").hasSize(1);
        assertThat(pluginLoader()).as("the plugin that was running").isSameAs(loaded.get());
        assertThat(survivor.reattach(runtime())).satisfies(state -> {
            assertThat(state.status()).isEqualTo(TaskState.Status.RUNNING);
            assertThat(state.pid()).isEqualTo(pid);
        });
    }

    private RuntimePlugin runtime() {
        return host.runtime().withConfig(config);
    }

    private ClassLoader pluginLoader() {
        return host.runtime().getClass().getClassLoader();
    }

    /** A finished file renamed over the zip, as a deployment does. */
    private void putInPlace(Path staged) throws IOException {
        Files.move(staged, zip, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private Path copyOfBuiltZip() throws IOException {
        return Files.copy(builtZip(), temp.resolve("staged.zip"), StandardCopyOption.REPLACE_EXISTING);
    }

    /** The first half of the built zip: a copy that stopped midway. */
    private Path cutShort(Path whole) throws IOException {
        byte[] bytes = Files.readAllBytes(whole);
        Path staged = temp.resolve("staged.zip");
        try (OutputStream out = Files.newOutputStream(staged)) {
            out.write(bytes, 0, bytes.length / 2);
        }
        return staged;
    }

    /** The built zip with only its {@code plugin.requires} changed. */
    private Path withRequires(String requires) throws IOException {
        Path staged = copyOfBuiltZip();
        try (FileSystem files = FileSystems.newFileSystem(URI.create("jar:" + staged.toUri()), Map.of())) {
            Path properties = files.getPath("plugin.properties");
            Files.writeString(properties, Files.readString(properties)
                    .replaceAll("(?m)^plugin.requires=.*$", "plugin.requires=" + requires));
        }
        return staged;
    }

    private static String nextMinor(String version) {
        String[] parts = version.split("\\.");
        return parts[0] + "." + (Integer.parseInt(parts[1]) + 1) + ".0";
    }

    private static void awaitCollected(WeakReference<ClassLoader> loader) throws InterruptedException {
        for (int i = 0; i < 100 && loader.get() != null; i++) {
            System.gc();
            Thread.sleep(50);
        }
        assertThat(loader.get()).as("the replaced plugin's class loader").isNull();
    }

    /** No bundle, mount, process or scratch directory left; one plugin's threads at most (the running one). */
    private void assertNothingLeft() throws IOException {
        HostLeftovers.assertNoneUnder(temp, NS);
        assertThat(PluginZips.leftoversBeside(zip)).as("scratch or stale expansions beside the zip").isFalse();
    }

    private static Path builtZip() throws IOException {
        Path dir = Path.of(System.getProperty("shimmer.plugins.dir", "target/plugins"));
        try (Stream<Path> zips = Files.list(dir)) {
            return zips.filter(p -> p.getFileName().toString().endsWith(".zip")).findFirst()
                    .orElseThrow(() -> new IllegalStateException("no plugin zip in " + dir));
        }
    }
}
