package org.shimmer.examples.cli;

import java.net.URISyntaxException;
import java.nio.file.Path;
import org.shimmer.runtime.RuntimeConfig;
import picocli.CommandLine.Option;

/** The options before the command: where the plugin and the runtime's state live. */
final class GlobalOptions {

    @Option(names = "--plugins", paramLabel = "DIR", description = "Plugins directory (default: plugins/ next to"
            + " the jar).")
    Path pluginsDir = defaultPluginsDir();

    @Option(names = "--state-root", paramLabel = "DIR", description = "Bundles and runc state (default: ${DEFAULT-VALUE}).")
    Path stateRoot = RuntimeConfig.DEFAULT_STATE_ROOT;

    @Option(names = "--work-root", paramLabel = "DIR", description = "Containers' work directories (default:"
            + " ${DEFAULT-VALUE}).")
    Path workRoot = RuntimeConfig.DEFAULT_WORK_ROOT;

    @Option(names = "--image-root", paramLabel = "DIR", description = "Image store (default: under the state root).")
    Path imageRoot;

    @Option(names = {"-n", "--namespace"}, paramLabel = "NS", description = "Namespace (default: ${DEFAULT-VALUE}).")
    String namespace = "default";

    private static Path defaultPluginsDir() {
        try {
            Path jar = Path.of(ShimmerCli.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            return jar.getParent().resolve("plugins");
        } catch (URISyntaxException | RuntimeException e) {
            return Path.of("plugins");
        }
    }
}
