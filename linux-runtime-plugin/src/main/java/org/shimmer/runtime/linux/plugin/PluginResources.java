package org.shimmer.runtime.linux.plugin;

import io.netty.util.concurrent.FastThreadLocal;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;
import reactor.netty.resources.LoopResources;

/**
 * Everything the plugin starts that must end when it stops. Made by {@link LinuxRuntimePlugin#start()}, closed by
 * {@link LinuxRuntimePlugin#stop()}; nothing else creates threads, loops or servers.
 */
final class PluginResources implements AutoCloseable {

    /** Every thread the plugin starts has a name with this prefix; the unload tests look for survivors by it. */
    static final String THREAD_PREFIX = "shimmer-";

    /** How long stop waits for running work before it stops waiting. */
    static final Duration STOP_TIMEOUT = Duration.ofSeconds(10);

    private static final Logger log = LoggerFactory.getLogger(PluginResources.class);

    private final Scheduler io;
    private final LoopResources loops;

    PluginResources() {
        int cores = Runtime.getRuntime().availableProcessors();
        this.io = Schedulers.newBoundedElastic(Math.max(4, 2 * cores), 10_000, THREAD_PREFIX + "io", 30, true);
        // The plugin's own loops, never reactor-netty's global ones: those would outlive an unload.
        this.loops = LoopResources.create(THREAD_PREFIX + "ttrpc", 1, Math.max(2, cores), true, false);
    }

    /** The bounded scheduler for blocking work: files and processes. */
    Scheduler io() {
        return io;
    }

    /** The event loops for unix socket connections (ttRPC clients and servers). */
    LoopResources loops() {
        return loops;
    }

    @Override
    public void close() {
        try {
            // No quiet period: nothing may still be submitted once the plugin is stopping.
            loops.disposeLater(Duration.ZERO, STOP_TIMEOUT).block(STOP_TIMEOUT);
        } catch (RuntimeException e) {
            log.warn("event loops did not stop within {}", STOP_TIMEOUT, e);
        }
        try {
            io.disposeGracefully().timeout(STOP_TIMEOUT).block();
        } catch (RuntimeException e) {
            log.warn("io scheduler did not stop within {}; forcing it", STOP_TIMEOUT, e);
            io.dispose();
        }
        // Netty leaves per-thread state on whatever host thread ran plugin code; it would pin this class loader.
        FastThreadLocal.removeAll();
    }
}
