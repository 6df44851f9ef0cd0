package org.shimmer.benchmarks;

import java.nio.file.Path;
import org.shimmer.examples.host.PluginHost;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.events.InMemoryEventExchange;
import org.shimmer.runtime.shim.ShimOpt;

/**
 * The plugin as the benchmarks host it: the zip the build left in {@code benchmarks/target/plugins}, loaded by the
 * example host, with its state, work and runc roots under the benchmark's work directory and an in-memory event
 * exchange; the remote shim is the real {@code containerd-shim-runc-v2}. Closing it disposes the exchange and stops
 * the host.
 */
final class BenchRuntime implements AutoCloseable {

    private final InMemoryEventExchange events = new InMemoryEventExchange();
    private final PluginHost host;
    private final RuntimePlugin runtime;
    private final RuncOptions runc;
    private final ShimOpt remote;

    BenchRuntime(Path work) {
        PluginHost started;
        try {
            started = PluginHost.start(Path.of("benchmarks/target/plugins"));
        } catch (RuntimeException | Error e) {
            events.dispose();
            throw e;
        }
        host = started;
        runtime = host.runtime().withConfig(new RuntimeConfig(work.resolve("state"), work.resolve("work"), events));
        runc = RuncOptions.defaults().withRuntimeRoot(work.resolve("runc-plugin").toString());
        remote = ShimOpt.remote(Path.of("/usr/bin/containerd-shim-runc-v2"), work.resolve("daemon").toString(), null,
                false, null);
    }

    RuntimePlugin runtime() {
        return runtime;
    }

    /** runc options with the benchmark's own runc root. */
    RuncOptions runc() {
        return runc;
    }

    /** The real containerd shim, its daemons under the benchmark's work directory. */
    ShimOpt remoteShim() {
        return remote;
    }

    @Override
    public void close() {
        try {
            host.close();
        } finally {
            events.dispose();
        }
    }
}
