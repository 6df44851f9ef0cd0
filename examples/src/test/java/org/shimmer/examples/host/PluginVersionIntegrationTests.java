package org.shimmer.examples.host;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.ref.Reference;
import java.lang.ref.ReferenceQueue;
import java.lang.ref.WeakReference;
import java.net.URI;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pf4j.PluginDescriptor;
import org.pf4j.PluginWrapper;
import org.shimmer.runtime.RuntimePlugin;

/**
 * The API's version decides which plugin a host takes: the real zip (requires {@code ^API_VERSION}) loads; the same
 * zip declaring the next minor API (only its {@code plugin.properties} rewritten) is refused at load, naming the
 * plugin, its requires and the host's API version, with nothing of it started and its class loader collected.
 */
class PluginVersionIntegrationTests {

    private static final String PLUGIN_ID = "shimmer-linux-runtime";

    @TempDir
    Path temp;

    private Path pluginsDir;

    @BeforeEach
    void setUp() throws IOException {
        pluginsDir = Files.createDirectories(temp.resolve("plugins"));
    }

    @Test
    void theRealZipRequiresThisApiAndLoads() throws IOException {
        Files.copy(pluginZip(), pluginsDir.resolve(pluginZip().getFileName()));
        try (PluginHost host = PluginHost.start(pluginsDir)) {
            assertThat(host.started()).singleElement().satisfies(plugin -> {
                assertThat(plugin.getPluginId()).isEqualTo(PLUGIN_ID);
                assertThat(plugin.getDescriptor().getRequires()).isEqualTo("^" + RuntimePlugin.API_VERSION);
                assertThat(plugin.getPluginManager().getSystemVersion()).isEqualTo(RuntimePlugin.API_VERSION);
            });
            assertThat(host.runtime()).isNotNull();
        }
        assertThat(pluginThreads()).isEmpty();
    }

    @Test
    void aZipBuiltForTheNextMinorApiIsRefusedAtLoadAndNothingOfItStarts() throws IOException {
        String newer = "^" + nextMinor(RuntimePlugin.API_VERSION);
        withRequires(newer, pluginsDir.resolve("future-api.zip"));

        assertThatThrownBy(() -> PluginHost.start(pluginsDir))
                .isInstanceOfSatisfying(IncompatiblePluginException.class, refused -> {
                    assertThat(refused.pluginId()).isEqualTo(PLUGIN_ID);
                    assertThat(refused.requires()).isEqualTo(newer);
                    assertThat(refused.apiVersion()).isEqualTo(RuntimePlugin.API_VERSION);
                })
                .hasMessageContaining(PLUGIN_ID)
                .hasMessageContaining("requires API " + newer)
                .hasMessageContaining("this host provides API " + RuntimePlugin.API_VERSION);
        assertThat(pluginThreads()).as("threads of the refused plugin").isEmpty();
    }

    @Test
    void aRefusedPluginIsUnloadedAndItsClassLoaderCollected() throws IOException, InterruptedException {
        withRequires("^" + nextMinor(RuntimePlugin.API_VERSION), pluginsDir.resolve("future-api.zip"));
        ReferenceQueue<ClassLoader> collected = new ReferenceQueue<>();
        WeakReference<ClassLoader> loader = refuseOnce(collected);

        // The collector enqueues the reference once the loader is gone: that, not a sleep, ends each wait.
        Reference<? extends ClassLoader> enqueued = null;
        for (int i = 0; i < 50 && enqueued == null; i++) {
            System.gc();
            enqueued = collected.remove(100);
        }
        assertThat(enqueued).as("the refused plugin's class loader is collected").isSameAs(loader);
        assertThat(loader.get()).isNull();
        assertThat(pluginThreads()).isEmpty();
    }

    /** Everything that refers to the refused plugin stays in this frame. */
    private WeakReference<ClassLoader> refuseOnce(ReferenceQueue<ClassLoader> collected) {
        WeakReference<?>[] seen = new WeakReference<?>[1];
        ApiVersionedPluginManager plugins = new ApiVersionedPluginManager(pluginsDir) {
            @Override
            protected PluginWrapper createPluginWrapper(PluginDescriptor descriptor, Path path, ClassLoader loader) {
                seen[0] = new WeakReference<>(loader, collected);
                return super.createPluginWrapper(descriptor, path, loader);
            }
        };
        assertThatThrownBy(plugins::loadPlugins).isInstanceOf(IncompatiblePluginException.class);
        assertThat(plugins.getPlugins()).isEmpty();
        assertThat(plugins.getPluginClassLoader(PLUGIN_ID)).isNull();
        @SuppressWarnings("unchecked")
        WeakReference<ClassLoader> loader = (WeakReference<ClassLoader>) seen[0];
        assertThat(loader).as("PF4J made the plugin's class loader").isNotNull();
        return loader;
    }

    /** The real zip with only its {@code plugin.requires} changed. */
    private static void withRequires(String requires, Path target) throws IOException {
        Files.copy(pluginZip(), target);
        try (FileSystem zip = FileSystems.newFileSystem(URI.create("jar:" + target.toUri()), Map.of())) {
            Path properties = zip.getPath("plugin.properties");
            String text = Files.readString(properties);
            assertThat(text).containsPattern("(?m)^plugin.requires=");
            Files.writeString(properties, text.replaceAll("(?m)^plugin.requires=.*$", "plugin.requires=" + requires));
        }
    }

    private static String nextMinor(String version) {
        String[] parts = version.split("\\.");
        return parts[0] + "." + (Integer.parseInt(parts[1]) + 1) + ".0";
    }

    private static List<String> pluginThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(Thread::isAlive).map(Thread::getName)
                .filter(name -> name.startsWith("shimmer-")).toList();
    }

    private static Path pluginZip() throws IOException {
        Path dir = Path.of(System.getProperty("shimmer.plugins.dir", "target/plugins"));
        try (Stream<Path> zips = Files.list(dir)) {
            return zips.filter(p -> p.getFileName().toString().endsWith(".zip")).findFirst()
                    .orElseThrow(() -> new IllegalStateException("no plugin zip in " + dir));
        }
    }
}
