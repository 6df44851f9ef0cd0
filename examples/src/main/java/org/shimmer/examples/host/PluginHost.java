package org.shimmer.examples.host;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.FileSystems;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchEvent;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import org.pf4j.PluginWrapper;
import org.shimmer.runtime.RuntimePlugin;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Sinks;
import reactor.core.scheduler.Schedulers;

/**
 * A host's side of PF4J, in one place: load the plugins of a directory, hand out the {@link RuntimePlugin}
 * extension, reload a plugin whose zip changed, and stop and unload everything on {@link #close()}.
 *
 * <p>A host must drop every extension and publisher it got from a plugin before that plugin is unloaded, or the
 * old class loader stays alive: take {@link #runtime()} afresh after each {@link #reloads() reload}.
 */
public final class PluginHost implements AutoCloseable {

    /** One reload: which plugin, from which version to which, and how long it took. */
    public record Reload(String pluginId, String oldVersion, String newVersion, Duration took) {}

    private final ApiVersionedPluginManager plugins;
    private final Path pluginsDir;
    private final Sinks.Many<Reload> reloads = Sinks.many().multicast().directBestEffort();
    private volatile WatchService watcher;
    private volatile Thread watchThread;
    /** Set by {@link #close()} under this host's lock, which reloads hold: no reload runs after the stop. */
    private volatile boolean closed;

    private PluginHost(ApiVersionedPluginManager plugins, Path pluginsDir) {
        this.plugins = plugins;
        this.pluginsDir = pluginsDir;
    }

    /**
     * Loads and starts every plugin in {@code pluginsDir}; throws {@link IncompatiblePluginException}, starting
     * none, if one was built for another API than {@link RuntimePlugin#API_VERSION}.
     */
    public static PluginHost start(Path pluginsDir) {
        Objects.requireNonNull(pluginsDir, "pluginsDir");
        warmUpSharedSchedulers();
        ApiVersionedPluginManager plugins = new ApiVersionedPluginManager(pluginsDir);
        try {
            plugins.loadPlugins();
        } catch (IncompatiblePluginException e) {
            plugins.unloadPlugins();
            throw e;
        }
        plugins.startPlugins();
        return new PluginHost(plugins, pluginsDir);
    }

    /** The runtime extension of the loaded plugins; take it again after a reload. */
    public RuntimePlugin runtime() {
        List<RuntimePlugin> runtimes = plugins.getExtensions(RuntimePlugin.class);
        if (runtimes.isEmpty()) {
            throw new IllegalStateException("no plugin in " + pluginsDir + " provides a RuntimePlugin");
        }
        return runtimes.getFirst();
    }

    /** The started plugins. */
    public List<PluginWrapper> started() {
        return plugins.getStartedPlugins();
    }

    /** Every reload from now on. */
    public Flux<Reload> reloads() {
        return reloads.asFlux();
    }

    /**
     * Replaces the plugin that was loaded from {@code zip}, and one of the same plugin id loaded from another
     * zip (the last version's, beside it), with what the zip holds now: stop, unload, load, start. A zip built for another API is refused with
     * {@link IncompatiblePluginException}, and one that is broken (no zip, cut short, no descriptor) with
     * {@link org.pf4j.PluginRuntimeException} naming it, before the old plugin is touched: it keeps running.
     */
    public synchronized Reload reload(Path zip) {
        if (closed) {
            throw new IllegalStateException("cannot reload " + zip + ": the plugin host of " + pluginsDir
                    + " is closed");
        }
        long started = System.nanoTime();
        // Before the old plugin is touched: a broken zip, or one for another API, leaves it running.
        String incoming = plugins.admit(zip).getPluginId();
        Path expanded = expandedDir(zip);
        // The plugin this zip replaces: the one loaded from it, or one of its id from another zip (a version's
        // zip beside the last one's), which PF4J would otherwise refuse as already loaded.
        List<PluginWrapper> old = plugins.getPlugins().stream()
                .filter(plugin -> plugin.getPluginPath().toAbsolutePath().equals(expanded.toAbsolutePath())
                        || plugin.getPluginId().equals(incoming))
                .toList();
        String oldVersion = old.stream().map(plugin -> plugin.getDescriptor().getVersion()).findFirst()
                .orElse("none");
        old.forEach(plugin -> plugins.unloadPlugin(plugin.getPluginId()));
        // No delete of the old expansion here: loading expands the zip anew, whole, unless it is that one.
        String id = plugins.loadPlugin(zip);
        plugins.startPlugin(id);
        Reload reload = new Reload(id, oldVersion, plugins.getPlugin(id).getDescriptor().getVersion(),
                Duration.ofNanos(System.nanoTime() - started));
        reloads.tryEmitNext(reload);
        return reload;
    }

    /**
     * Watches the plugins directory: a zip that appears or changes is (re)loaded. Drop zips in by renaming a
     * finished file into the directory, so no half-written zip is ever read.
     */
    public synchronized void watch() {
        if (watchThread != null || closed) {
            return;
        }
        try {
            watcher = FileSystems.getDefault().newWatchService();
            pluginsDir.register(watcher, StandardWatchEventKinds.ENTRY_CREATE, StandardWatchEventKinds.ENTRY_MODIFY);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot watch " + pluginsDir, e);
        }
        watchThread = Thread.ofPlatform().name("host-plugin-watcher").daemon(true).start(this::watchLoop);
    }

    private void watchLoop() {
        try {
            while (true) {
                WatchKey key = watcher.take();
                for (WatchEvent<?> event : key.pollEvents()) {
                    if (closed) {
                        return;
                    }
                    if (event.context() instanceof Path name && name.toString().endsWith(".zip")) {
                        try {
                            reload(pluginsDir.resolve(name));
                        } catch (RuntimeException e) {
                            if (closed) {
                                // Closed between the look above and the reload: refused as it should be, quietly.
                                return;
                            }
                            System.err.println("could not reload " + name + ": " + e.getMessage());
                        }
                    }
                }
                if (!key.reset()) {
                    return;
                }
            }
        } catch (InterruptedException | ClosedWatchServiceException stopped) {
            // close() ends the watch.
        }
    }

    /**
     * Stops watching, then stops and unloads every plugin, after a reload in flight ended; a reload asked for later
     * is refused. Drop every extension and publisher first.
     */
    @Override
    public void close() {
        closeWatcher();
        // Under the lock a reload holds: a close that gave up waiting for the watcher after 5 s stopped the plugins
        // while a reload went on, and the plugin that reload started then ran past the close.
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            // Again: a watch() that ran while this waited for the lock started a watcher the look above missed,
            // and its thread waited in it for good.
            closeWatcher();
            reloads.tryEmitComplete();
            plugins.stopPlugins();
            plugins.unloadPlugins();
        }
        Thread watching = watchThread;
        if (watching != null && watching != Thread.currentThread()) {
            try {
                // Only its next look at the closed watch service is left.
                watching.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private void closeWatcher() {
        WatchService current = watcher;
        if (current != null) {
            try {
                current.close();
            } catch (IOException ignored) {
                // Closing is best effort: the watcher also ends on the closed flag.
            }
        }
    }

    private static Path expandedDir(Path zip) {
        return PluginZips.expandedDir(zip);
    }

    /**
     * Makes the host's shared Reactor schedulers start their threads now, while no plugin code is on the stack,
     * so that no shared thread is ever created from (and pins) a plugin's class loader.
     */
    private static void warmUpSharedSchedulers() {
        Schedulers.boundedElastic().schedule(() -> {});
        Schedulers.parallel().schedule(() -> {});
    }
}
