package org.shimmer.examples.host;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import org.pf4j.DefaultPluginManager;
import org.pf4j.PluginManager;
import org.pf4j.PluginWrapper;
import org.shimmer.runtime.RuntimePlugin;
import reactor.core.scheduler.Schedulers;

/**
 * A host's side of PF4J, in one place: load the plugins of a directory, hand out the {@link RuntimePlugin}
 * extension, and stop and unload everything on {@link #close()}.
 */
public final class PluginHost implements AutoCloseable {

    private final PluginManager plugins;

    private PluginHost(PluginManager plugins) {
        this.plugins = plugins;
    }

    /** Loads and starts every plugin in {@code pluginsDir}. */
    public static PluginHost start(Path pluginsDir) {
        Objects.requireNonNull(pluginsDir, "pluginsDir");
        warmUpSharedSchedulers();
        PluginManager plugins = new DefaultPluginManager(pluginsDir);
        plugins.loadPlugins();
        plugins.startPlugins();
        return new PluginHost(plugins);
    }

    /** The runtime extension of the loaded plugins. */
    public RuntimePlugin runtime() {
        List<RuntimePlugin> runtimes = plugins.getExtensions(RuntimePlugin.class);
        if (runtimes.isEmpty()) {
            throw new IllegalStateException("no plugin in " + plugins.getPluginsRoots() + " provides a RuntimePlugin");
        }
        return runtimes.getFirst();
    }

    /** The started plugins. */
    public List<PluginWrapper> started() {
        return plugins.getStartedPlugins();
    }

    /** Stops and unloads every plugin. Drop every extension and publisher from the plugins first. */
    @Override
    public void close() {
        plugins.stopPlugins();
        plugins.unloadPlugins();
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
