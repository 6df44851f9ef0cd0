package org.shimmer.examples.cli;

import picocli.CommandLine.IVersionProvider;

/** {@code shimmer --version}: the CLI's version, from its jar's manifest when it runs from one. */
public final class VersionProvider implements IVersionProvider {

    @Override
    public String[] getVersion() {
        String version = ShimmerCli.class.getPackage().getImplementationVersion();
        return new String[] {"shimmer " + (version != null ? version : "development build")};
    }
}
