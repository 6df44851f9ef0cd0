package org.shimmer.runtime.linux.plugin;

import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;

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

    PluginResources() {
        int threads = Math.max(4, 2 * Runtime.getRuntime().availableProcessors());
        this.io = Schedulers.newBoundedElastic(threads, 10_000, THREAD_PREFIX + "io", 30, true);
    }

    /** The bounded scheduler for blocking work: files and processes. */
    Scheduler io() {
        return io;
    }

    @Override
    public void close() {
        try {
            io.disposeGracefully().timeout(STOP_TIMEOUT).block();
        } catch (RuntimeException e) {
            log.warn("io scheduler did not stop within {}; forcing it", STOP_TIMEOUT, e);
            io.dispose();
        }
    }
}
