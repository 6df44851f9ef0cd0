package org.shimmer.runtime.linux.plugin;

import org.pf4j.Plugin;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;

/**
 * The PF4J plugin: owns every resource the runtime uses. {@link #start()} makes them, {@link #stop()} ends them;
 * the {@link LinuxRuntimeExtension} instances PF4J creates borrow them.
 */
public final class LinuxRuntimePlugin extends Plugin {

    // One plugin instance per class loader, so a static is per loaded plugin: a reloaded plugin gets new classes
    // and a fresh field.
    private static volatile RuntimeResources resources;
    /** What every extension instance is a view of: made on the first, gone with the resources. */
    private static LinuxRuntime shared;
    /** The resources a stop is closing, until it returns: a stop at the same time waits for their end too. */
    private static RuntimeResources stopping;

    @Override
    public void start() {
        synchronized (LinuxRuntimePlugin.class) {
            if (resources == null) {
                resources = new RuntimeResources(RuntimeResources.THREAD_PREFIX);
            }
        }
        log.info("Shimmer Linux runtime started");
    }

    @Override
    public void stop() {
        RuntimeResources current;
        synchronized (LinuxRuntimePlugin.class) {
            current = resources != null ? resources : stopping;
            stopping = current;
            resources = null;
            shared = null;
        }
        if (current != null) {
            // A second stop while this one closes them waits for the first close to end (RuntimeResources.close).
            current.close();
            synchronized (LinuxRuntimePlugin.class) {
                if (stopping == current) {
                    stopping = null;
                }
            }
        }
        log.info("Shimmer Linux runtime stopped");
    }

    /**
     * The runtime every {@link LinuxRuntimeExtension} shares its shims with, on the running plugin's resources;
     * {@link UnavailableException} while it is not started.
     */
    static LinuxRuntime shared() {
        synchronized (LinuxRuntimePlugin.class) {
            if (shared == null) {
                shared = new LinuxRuntime(RuntimeConfig.defaults(), resources());
            }
            return shared;
        }
    }

    /** The running plugin's resources; {@link UnavailableException} while it is not started. */
    static RuntimeResources resources() {
        RuntimeResources current = resources;
        if (current == null) {
            throw new UnavailableException("the Shimmer Linux runtime plugin is not started (or was stopped)");
        }
        return current;
    }
}
