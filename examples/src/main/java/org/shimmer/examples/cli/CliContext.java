package org.shimmer.examples.cli;

import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.shimmer.examples.host.PluginHost;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.events.InMemoryEventExchange;

/**
 * What every command shares: our three streams, the global options, and the plugin host, started on first use
 * (so {@code --help}, {@code completion} and usage errors never load the plugin) and closed once the command ends.
 */
final class CliContext implements AutoCloseable {

    /** The bound of one quick call to the runtime or a shim. */
    static final Duration TIMEOUT = Duration.ofSeconds(30);

    final InputStream in;
    final PrintStream out;
    final PrintStream err;
    /** Whether {@code out} is a terminal, where progress is drawn in place. */
    final boolean terminal;
    /** Our environment, where {@code -e K} takes K's value. */
    final Map<String, String> environment;
    private final GlobalOptions options;
    private final InMemoryEventExchange events = new InMemoryEventExchange();
    private PluginHost host;
    private RuntimePlugin runtime;

    CliContext(InputStream in, PrintStream out, PrintStream err, boolean terminal, Map<String, String> environment,
            GlobalOptions options) {
        this.in = in;
        this.out = out;
        this.err = err;
        this.terminal = terminal;
        this.environment = environment;
        this.options = options;
    }

    String namespace() {
        return options.namespace;
    }

    Path stateRoot() {
        return options.stateRoot;
    }

    Path workRoot() {
        return options.workRoot;
    }

    /** The plugin host, started from {@code --plugins} on the first call. */
    PluginHost host() {
        if (host == null) {
            if (!Files.isDirectory(options.pluginsDir)) {
                throw new CliException("plugins directory " + options.pluginsDir + " does not exist");
            }
            host = PluginHost.start(options.pluginsDir);
        }
        return host;
    }

    /** The runtime on our roots, its events on this process's exchange. */
    RuntimePlugin runtime() {
        if (runtime == null) {
            runtime = host().runtime().withConfig(new RuntimeConfig(options.stateRoot, options.workRoot, events,
                    options.imageRoot));
        }
        return runtime;
    }

    @Override
    public void close() {
        try {
            if (host != null) {
                host.close();
            }
        } finally {
            events.dispose();
        }
    }
}
