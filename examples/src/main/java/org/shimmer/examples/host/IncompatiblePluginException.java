package org.shimmer.examples.host;

import org.shimmer.runtime.RuntimePlugin;

/**
 * A plugin whose {@code plugin.requires} does not admit the host's {@link RuntimePlugin#API_VERSION}: built for
 * another API, so it was unloaded without being started.
 */
public final class IncompatiblePluginException extends RuntimeException {

    private final String pluginId;
    private final String requires;
    private final String apiVersion;

    IncompatiblePluginException(String pluginId, String pluginVersion, String requires, String apiVersion) {
        super("plugin " + pluginId + " " + pluginVersion + " requires API " + requires + " but this host provides API "
                + apiVersion + "; it was not started (use a plugin built for API " + apiVersion + ")");
        this.pluginId = pluginId;
        this.requires = requires;
        this.apiVersion = apiVersion;
    }

    /** The refused plugin's id. */
    public String pluginId() {
        return pluginId;
    }

    /** Its {@code plugin.requires}. */
    public String requires() {
        return requires;
    }

    /** The host's API version. */
    public String apiVersion() {
        return apiVersion;
    }
}
