package org.shimmer.examples.cli;

import org.shimmer.runtime.RuntimePlugin;
import picocli.CommandLine.IVersionProvider;

/**
 * {@code shimmer --version}: the CLI's version, from its jar's manifest when it runs from one, and the plugin API it
 * hosts. Loads no plugin: it is the command start-up is measured with (issue 13).
 */
public final class VersionProvider implements IVersionProvider {

    @Override
    public String[] getVersion() {
        String version = ShimmerCli.class.getPackage().getImplementationVersion();
        return new String[] {"shimmer " + (version != null ? version : "development build"),
            "plugin API " + RuntimePlugin.API_VERSION};
    }
}
