package org.shimmer.examples.host;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.ref.WeakReference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarInputStream;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pf4j.PluginClassLoader;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.test.StepVerifier;

/** The real plugin zip, as {@code package} built it, loaded through PF4J's {@code DefaultPluginManager}. */
class PluginLoadingIntegrationTests {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String PLUGIN_THREAD_PREFIX = "shimmer-";
    private static final byte[] SPEC = "{\"ociVersion\":\"1.0.2\"}".getBytes(UTF_8);

    @TempDir
    Path temp;

    private Path pluginsDir;

    @BeforeEach
    void copyPluginZip() throws IOException {
        pluginsDir = Files.createDirectories(temp.resolve("plugins"));
        Files.copy(pluginZip(), pluginsDir.resolve(pluginZip().getFileName()));
    }

    @Test
    void zipHoldsPrivateLibrariesAndTheExtensionIndexButNoSharedOnes() throws IOException {
        try (ZipFile zip = new ZipFile(pluginZip().toFile())) {
            List<String> names = zip.stream().map(ZipEntry::getName).toList();
            assertThat(names).contains("plugin.properties");
            List<String> jars = names.stream().filter(n -> n.startsWith("lib/") && n.endsWith(".jar")).toList();
            assertThat(jars).anyMatch(n -> n.startsWith("lib/linux-runtime-plugin-"))
                    .anyMatch(n -> n.startsWith("lib/jackson-databind-"))
                    .noneMatch(n -> n.contains("reactor-core") || n.contains("pf4j") || n.contains("slf4j")
                            || n.contains("plugin-api") || n.contains("reactive-streams") || n.contains("epoll"));

            String pluginJar = jars.stream().filter(n -> n.startsWith("lib/linux-runtime-plugin-")).findFirst()
                    .orElseThrow();
            try (JarInputStream jar = new JarInputStream(zip.getInputStream(zip.getEntry(pluginJar)))) {
                String index = null;
                for (ZipEntry entry; (entry = jar.getNextEntry()) != null; ) {
                    if (entry.getName().equals("META-INF/extensions.idx")) {
                        index = new String(jar.readAllBytes(), UTF_8);
                    }
                }
                assertThat(index).contains("org.shimmer.runtime.linux.plugin.LinuxRuntimeExtension");
            }
        }
    }

    @Test
    void hostLoadsTheZipAndRoundTripsABundle() throws IOException {
        Path stateRoot = temp.resolve("state");
        Path workRoot = temp.resolve("work");
        try (PluginHost host = PluginHost.start(pluginsDir)) {
            assertThat(host.started()).singleElement()
                    .satisfies(plugin -> assertThat(plugin.getPluginId()).isEqualTo("shimmer-linux-runtime"));
            RuntimePlugin extension = host.runtime();
            assertThat(extension.getClass().getClassLoader()).isInstanceOf(PluginClassLoader.class);
            RuntimePlugin runtime = extension.withConfig(new RuntimeConfig(stateRoot, workRoot));

            Mono<Bundle> create = runtime.create("ns", "c1", SPEC);
            // The publisher the plugin made is the host's Mono: one reactor-core, loaded by the host.
            assertThat(create).isInstanceOf(Mono.class);
            assertThat(create.getClass().getClassLoader()).isSameAs(Mono.class.getClassLoader());
            Flux<Bundle> list = runtime.list("ns");
            assertThat(list.getClass().getClassLoader()).isSameAs(Flux.class.getClassLoader());

            StepVerifier.create(create.map(Bundle::path)).expectNext(stateRoot.resolve("ns/c1")).verifyComplete();
            StepVerifier.create(list.map(Bundle::id)).expectNext("c1").verifyComplete();
            Bundle loaded = runtime.load("ns", "c1").block(TIMEOUT);
            assertThat(Files.readAllBytes(loaded.configFile())).isEqualTo(SPEC);
            StepVerifier.create(loaded.delete()).verifyComplete();
            StepVerifier.create(runtime.load("ns", "c1")).expectError(NotFoundException.class).verify(TIMEOUT);
            assertThat(workRoot.resolve("ns/c1")).doesNotExist();
        }
    }

    @Test
    void stopAndUnloadLeaveNoPluginThreadAndFreeTheClassLoader() throws IOException, InterruptedException {
        WeakReference<ClassLoader> pluginLoader = useThePluginOnce(temp.resolve("state"), temp.resolve("work"));

        awaitNoThreadStartingWith(PLUGIN_THREAD_PREFIX);
        for (int i = 0; i < 50 && pluginLoader.get() != null; i++) {
            System.gc();
            Thread.sleep(20);
        }
        assertThat(pluginLoader.get()).as("the unloaded plugin's class loader is collected").isNull();
    }

    @Test
    void aReloadRacingCloseEndsBeforeTheStopOrIsRefusedAndNoneRunsAfterIt() throws Exception {
        Path zip = pluginsDir.resolve(pluginZip().getFileName());
        PluginHost racing = PluginHost.start(pluginsDir);
        CompletableFuture<PluginHost.Reload> reload = CompletableFuture.supplyAsync(() -> racing.reload(zip));
        racing.close();
        Throwable refused = reload.handle((done, error) -> error).get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        if (refused != null) {
            assertThat(refused).hasCauseInstanceOf(IllegalStateException.class).cause().hasMessageContaining("closed");
        }
        assertThat(racing.started()).as("plugins started after the close").isEmpty();

        PluginHost closed = PluginHost.start(pluginsDir);
        closed.close();
        assertThatThrownBy(() -> closed.reload(zip)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining(zip.toString()).hasMessageContaining("closed");
        assertThat(closed.started()).as("plugins started after the close").isEmpty();
        awaitNoThreadStartingWith(PLUGIN_THREAD_PREFIX);
    }

    /**
     * A watch() that ran while close() waited for the host's lock (a reload held it) started a watcher after close
     * had looked for one: nothing closed it, and its thread waited in the watch service for good, its inotify
     * descriptor open.
     */
    @Test
    void aWatchBegunWhileCloseWaitsForTheLockEndsWithTheClose() throws Exception {
        PluginHost racing = PluginHost.start(pluginsDir);
        Thread closer;
        Thread watching;
        // Held as a reload holds it: close() looks for the watcher, finds none, and waits here.
        synchronized (racing) {
            closer = Thread.ofPlatform().name("closer").start(racing::close);
            while (closer.getState() != Thread.State.BLOCKED) {
                Thread.onSpinWait();
            }
            List<Thread> before = watcherThreads();
            racing.watch();
            watching = watcherThreads().stream().filter(thread -> !before.contains(thread)).findFirst()
                    .orElseThrow();
        }
        closer.join(TIMEOUT.toMillis());
        assertThat(closer.isAlive()).as("close() returned").isFalse();
        assertThat(watching.isAlive()).as("the watcher thread after the close").isFalse();
    }

    private static List<Thread> watcherThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(thread -> thread.isAlive() && thread.getName().equals("host-plugin-watcher"))
                .toList();
    }

    /** Everything that refers to the plugin stays in this frame, so nothing pins it once this returns. */
    private WeakReference<ClassLoader> useThePluginOnce(Path stateRoot, Path workRoot) {
        PluginHost host = PluginHost.start(pluginsDir);
        try {
            RuntimePlugin runtime = host.runtime().withConfig(new RuntimeConfig(stateRoot, workRoot));
            Bundle bundle = runtime.create("ns", "c1", SPEC).block(TIMEOUT);
            Objects.requireNonNull(bundle).delete().block(TIMEOUT);
            assertThat(pluginThreads()).isNotEmpty();
            return new WeakReference<>(runtime.getClass().getClassLoader());
        } finally {
            host.close();
        }
    }

    private static void awaitNoThreadStartingWith(String prefix) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!pluginThreads().isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertThat(pluginThreads()).as("threads named " + prefix + "* after stop").isEmpty();
    }

    private static List<String> pluginThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(Thread::isAlive)
                .map(Thread::getName)
                .filter(name -> name.startsWith(PLUGIN_THREAD_PREFIX))
                .toList();
    }

    private static Path pluginZip() throws IOException {
        Path dir = Path.of(System.getProperty("shimmer.plugins.dir", "target/plugins"));
        try (Stream<Path> zips = Files.list(dir)) {
            return zips.filter(p -> p.getFileName().toString().endsWith(".zip")).findFirst()
                    .orElseThrow(() -> new IllegalStateException("no plugin zip in " + dir + "; run ./mvnw package"));
        }
    }
}
