package org.shimmer.runtime;

import java.nio.file.Path;
import java.util.Objects;
import org.shimmer.runtime.events.EventExchange;

/**
 * Where a runtime keeps its bundles, and where it publishes what its shims report. Immutable; the {@code with*}
 * methods return modified copies.
 *
 * @param stateRoot the parent of {@code <namespace>/<id>} bundle directories (default {@code /run/shimmer})
 * @param workRoot the parent of {@code <namespace>/<id>} work directories (default {@code /var/lib/shimmer})
 * @param events the host's exchange for shim events, or {@code null} for one the plugin owns
 */
public record RuntimeConfig(Path stateRoot, Path workRoot, EventExchange events) {

    /** The default state root: bundles are runtime state and do not outlive a reboot. */
    public static final Path DEFAULT_STATE_ROOT = Path.of("/run/shimmer");

    /** The default work root: persistent per-container data. */
    public static final Path DEFAULT_WORK_ROOT = Path.of("/var/lib/shimmer");

    public RuntimeConfig {
        stateRoot = Objects.requireNonNull(stateRoot, "stateRoot").toAbsolutePath().normalize();
        workRoot = Objects.requireNonNull(workRoot, "workRoot").toAbsolutePath().normalize();
    }

    /** Roots, and the plugin's own event exchange. */
    public RuntimeConfig(Path stateRoot, Path workRoot) {
        this(stateRoot, workRoot, null);
    }

    /** The default roots. */
    public static RuntimeConfig defaults() {
        return new RuntimeConfig(DEFAULT_STATE_ROOT, DEFAULT_WORK_ROOT);
    }

    /** A copy with another state root. */
    public RuntimeConfig withStateRoot(Path stateRoot) {
        return new RuntimeConfig(stateRoot, workRoot, events);
    }

    /** A copy with another work root. */
    public RuntimeConfig withWorkRoot(Path workRoot) {
        return new RuntimeConfig(stateRoot, workRoot, events);
    }

    /** A copy publishing shim events into the host's {@code events}. */
    public RuntimeConfig withEvents(EventExchange events) {
        return new RuntimeConfig(stateRoot, workRoot, events);
    }
}
