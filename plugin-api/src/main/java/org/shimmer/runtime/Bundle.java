package org.shimmer.runtime;

import java.nio.file.Path;
import reactor.core.publisher.Mono;

/**
 * An OCI bundle on disk: a plain value naming its directories, plus {@link #delete()}.
 *
 * <p>Layout: {@link #path()} holds {@code rootfs/} and {@code config.json}; {@link #workDir()} is a separate
 * directory for the runtime's own files.
 */
public interface Bundle {

    /** The container id, a valid {@linkplain Identifiers identifier}. */
    String id();

    /** The namespace, a valid {@linkplain Identifiers identifier}. */
    String namespace();

    /** The bundle directory, {@code <stateRoot>/<namespace>/<id>}. */
    Path path();

    /** The work directory, {@code <workRoot>/<namespace>/<id>}. */
    Path workDir();

    /** The root filesystem directory inside the bundle. */
    default Path rootfs() {
        return path().resolve("rootfs");
    }

    /** The OCI runtime spec inside the bundle. */
    default Path configFile() {
        return path().resolve("config.json");
    }

    /**
     * Deletes the bundle directory and the work directory. Both are attempted even when one fails, and one error
     * reports every failure. Deleting a bundle that is already gone succeeds. A crash midway never leaves
     * something that {@link RuntimePlugin#list} or {@link RuntimePlugin#load} would take for a bundle.
     */
    Mono<Void> delete();
}
