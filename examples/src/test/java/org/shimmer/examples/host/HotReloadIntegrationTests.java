package org.shimmer.examples.host;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.ref.WeakReference;
import java.net.URI;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.events.InMemoryEventExchange;
import org.shimmer.runtime.shim.TaskState;
import reactor.core.publisher.Mono;

/**
 * Hot reload, proven: the host watches its plugins directory, a new zip replaces the plugin 50 times while a
 * container runs through every reload, and nothing of the old plugins survives.
 */
class HotReloadIntegrationTests {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final int CYCLES = 50;
    private static final String NS = "reload";
    private static final String ID = "long-runner";

    @TempDir
    Path temp;

    private Path pluginsDir;
    private Path zip;
    private PluginHost host;
    private InMemoryEventExchange events;
    private RuntimeConfig config;
    private LongRunner longRunner;

    @BeforeEach
    void setUp() throws IOException {
        pluginsDir = Files.createDirectories(temp.resolve("plugins"));
        Path built = pluginZip();
        zip = pluginsDir.resolve(built.getFileName());
        Files.copy(built, zip);
        events = new InMemoryEventExchange();
        config = new RuntimeConfig(temp.resolve("state"), temp.resolve("work"), events);
        longRunner = new LongRunner(NS, ID, BusyboxRootfs.write(temp.resolve("image")), temp.resolve("daemon"),
                RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString()));
        host = PluginHost.start(pluginsDir);
        host.watch();
    }

    @AfterEach
    void tearDown() throws IOException {
        host.close();
        events.dispose();
        assertThat(StateRootCgroups.removeEmptyAndListLeft(temp.resolve("state"))).as("container cgroups").isEmpty();
    }

    @Test
    void fiftyReloadsWithAContainerRunningThroughThem() throws Exception {
        int pid = longRunner.start(runtime());
        List<WeakReference<ClassLoader>> oldLoaders = new ArrayList<>();
        long fdsBaseline = 0;
        long threadsBaseline = 0;

        for (int cycle = 1; cycle <= CYCLES; cycle++) {
            oldLoaders.add(new WeakReference<>(currentPluginLoader()));
            replaceZip();
            assertThat(longRunner.reattach(runtime())).as("cycle %d", cycle).satisfies(state -> {
                assertThat(state.status()).isEqualTo(TaskState.Status.RUNNING);
                assertThat(state.pid()).isEqualTo(pid);
            });
            if (cycle == 5) {
                System.gc();
                fdsBaseline = openFds();
                threadsBaseline = pluginThreads();
            }
        }

        awaitCollected(oldLoaders);
        assertThat(openFds()).as("open file descriptors after %d reloads", CYCLES)
                .isLessThanOrEqualTo(fdsBaseline + 3);
        assertThat(pluginThreads()).as("plugin threads after %d reloads", CYCLES).isLessThanOrEqualTo(threadsBaseline);
        longRunner.stop(runtime());
    }

    /**
     * An upgrade as Maven names zips: the next version's zip put beside the last one's. PF4J refused it as a plugin
     * already loaded, so the watcher only printed an error and the old version ran on.
     */
    @Test
    void aNextVersionsZipBesideTheLastOneReplacesThePlugin() throws Exception {
        int pid = longRunner.start(runtime());
        WeakReference<ClassLoader> oldLoader = new WeakReference<>(currentPluginLoader());
        String oldVersion = host.started().getFirst().getDescriptor().getVersion();
        try {
            Mono<PluginHost.Reload> reloaded = host.reloads().next().cache();
            reloaded.subscribe();
            Path staged = temp.resolve("staged.zip");
            Files.copy(pluginZip(), staged);
            try (FileSystem files = FileSystems.newFileSystem(URI.create("jar:" + staged.toUri()), Map.of())) {
                Path properties = files.getPath("plugin.properties");
                Files.writeString(properties, Files.readString(properties)
                        .replaceAll("(?m)^plugin.version=.*$", "plugin.version=9.9.9"));
            }
            Files.move(staged, pluginsDir.resolve("linux-runtime-plugin-9.9.9.zip"), StandardCopyOption.ATOMIC_MOVE);

            PluginHost.Reload reload = reloaded.block(TIMEOUT);
            assertThat(reload.oldVersion()).isEqualTo(oldVersion);
            assertThat(reload.newVersion()).isEqualTo("9.9.9");
            assertThat(host.started()).singleElement()
                    .satisfies(plugin -> assertThat(plugin.getDescriptor().getVersion()).isEqualTo("9.9.9"));
            assertThat(longRunner.reattach(runtime()).pid()).as("the container through the new version")
                    .isEqualTo(pid);
            awaitCollected(List.of(oldLoader));
        } finally {
            longRunner.stop(runtime());
        }
    }

    private RuntimePlugin runtime() {
        return host.runtime().withConfig(config);
    }

    private ClassLoader currentPluginLoader() {
        return host.runtime().getClass().getClassLoader();
    }

    /** Puts the zip in again the way a deployment would: a finished file renamed into place. */
    private void replaceZip() throws IOException {
        Mono<PluginHost.Reload> reloaded = host.reloads().next().cache();
        reloaded.subscribe();
        Path staged = temp.resolve("staged.zip");
        Files.copy(pluginZip(), staged, StandardCopyOption.REPLACE_EXISTING);
        Files.move(staged, zip, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        reloaded.block(TIMEOUT);
    }

    private static void awaitCollected(List<WeakReference<ClassLoader>> loaders) throws InterruptedException {
        for (int i = 0; i < 100 && loaders.stream().anyMatch(ref -> ref.get() != null); i++) {
            System.gc();
            Thread.sleep(50);
        }
        assertThat(loaders.stream().filter(ref -> ref.get() != null).count())
                .as("old plugin class loaders still alive").isZero();
    }

    private static long openFds() throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        }
    }

    private static long pluginThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(thread -> thread.isAlive() && thread.getName().startsWith("shimmer-")).count();
    }

    private static Path pluginZip() throws IOException {
        Path dir = Path.of(System.getProperty("shimmer.plugins.dir", "target/plugins"));
        try (Stream<Path> zips = Files.list(dir)) {
            return zips.filter(p -> p.getFileName().toString().endsWith(".zip")).findFirst()
                    .orElseThrow(() -> new IllegalStateException("no plugin zip in " + dir));
        }
    }
}
