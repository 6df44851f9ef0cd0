package org.shimmer.examples.host;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.pf4j.DefaultPluginManager;
import org.pf4j.PluginDescriptor;
import org.pf4j.PluginWrapper;
import org.shimmer.runtime.RuntimePlugin;

/**
 * PF4J's {@link DefaultPluginManager} with the API's version as its system version, refusing what does not fit.
 *
 * <p>PF4J alone only logs a warning and leaves a plugin whose {@code plugin.requires} does not admit the system
 * version {@code DISABLED}, loaded, with its class loader; a host would just find no extension. Here loading such a
 * plugin unloads it at once and throws {@link IncompatiblePluginException} naming the plugin, what it requires and
 * the host's API version. Nothing of it is started. PF4J's own rule decides (jsemver expressions, {@code ^0.4.0}).
 */
public class ApiVersionedPluginManager extends DefaultPluginManager {

    private final Map<String, IncompatiblePluginException> refused = new ConcurrentHashMap<>();

    // setSystemVersion only stores the version; nothing reads it before loadPlugins().
    @SuppressWarnings("this-escape")
    public ApiVersionedPluginManager(Path pluginsDir) {
        super(pluginsDir);
        setSystemVersion(RuntimePlugin.API_VERSION);
    }

    @Override
    protected boolean isPluginValid(PluginWrapper plugin) {
        if (super.isPluginValid(plugin)) {
            return true;
        }
        PluginDescriptor descriptor = plugin.getDescriptor();
        refused.put(descriptor.getPluginId(), new IncompatiblePluginException(descriptor.getPluginId(),
                descriptor.getVersion(), descriptor.getRequires(), getSystemVersion()));
        return false;
    }

    /** Loads every plugin of the directory; throws, having unloaded them, if some were built for another API. */
    @Override
    public void loadPlugins() {
        super.loadPlugins();
        unloadRefused();
    }

    /** Loads one plugin; throws, having unloaded it, if it was built for another API. */
    @Override
    public String loadPlugin(Path pluginPath) {
        String id = super.loadPlugin(pluginPath);
        unloadRefused();
        return id;
    }

    private void unloadRefused() {
        List<IncompatiblePluginException> found = new ArrayList<>(refused.values());
        refused.clear();
        if (found.isEmpty()) {
            return;
        }
        for (IncompatiblePluginException refusal : found) {
            unloadPlugin(refusal.pluginId());
        }
        IncompatiblePluginException first = found.getFirst();
        found.stream().skip(1).forEach(first::addSuppressed);
        throw first;
    }
}
