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
 * @param imageRoot the image store's directory ({@link org.shimmer.runtime.image.Images}), or {@code null} for the
 *     default beside the work root: {@code <workRoot>-images} ({@code /var/lib/shimmer-images}); the accessor
 *     returns the resolved directory
 */
public record RuntimeConfig(Path stateRoot, Path workRoot, EventExchange events, Path imageRoot) {

    /** The default state root: bundles are runtime state and do not outlive a reboot. */
    public static final Path DEFAULT_STATE_ROOT = Path.of("/run/shimmer");

    /** The default work root: persistent per-container data. */
    public static final Path DEFAULT_WORK_ROOT = Path.of("/var/lib/shimmer");

    public RuntimeConfig {
        stateRoot = Objects.requireNonNull(stateRoot, "stateRoot").toAbsolutePath().normalize();
        workRoot = Objects.requireNonNull(workRoot, "workRoot").toAbsolutePath().normalize();
        imageRoot = imageRoot == null ? null : imageRoot.toAbsolutePath().normalize();
    }

    /** Roots, the default image root, and the host's exchange for shim events (or {@code null}). */
    public RuntimeConfig(Path stateRoot, Path workRoot, EventExchange events) {
        this(stateRoot, workRoot, events, null);
    }

    /** Roots, and the plugin's own event exchange. */
    public RuntimeConfig(Path stateRoot, Path workRoot) {
        this(stateRoot, workRoot, null, null);
    }

    /** The image root: the one given, or {@code <workRoot>-images} beside the work root. */
    @Override
    public Path imageRoot() {
        return imageRoot != null ? imageRoot : workRoot.resolveSibling(workRoot.getFileName() + "-images");
    }

    /** The default roots. */
    public static RuntimeConfig defaults() {
        return new RuntimeConfig(DEFAULT_STATE_ROOT, DEFAULT_WORK_ROOT);
    }

    /** A copy with another state root. */
    public RuntimeConfig withStateRoot(Path stateRoot) {
        return new RuntimeConfig(stateRoot, workRoot, events, imageRoot);
    }

    /** A copy with another work root (and so another default image root, when none was given). */
    public RuntimeConfig withWorkRoot(Path workRoot) {
        return new RuntimeConfig(stateRoot, workRoot, events, imageRoot);
    }

    /** A copy with another image root. */
    public RuntimeConfig withImageRoot(Path imageRoot) {
        return new RuntimeConfig(stateRoot, workRoot, events, Objects.requireNonNull(imageRoot, "imageRoot"));
    }

    /** A copy publishing shim events into the host's {@code events}. */
    public RuntimeConfig withEvents(EventExchange events) {
        return new RuntimeConfig(stateRoot, workRoot, events, imageRoot);
    }
}
