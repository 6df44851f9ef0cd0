package org.shimmer.runtime;

import java.nio.file.Path;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
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
     * Gets a shim for this bundle: starts one ({@link ShimOpt#remote}), reattaches to the running one
     * ({@link ShimOpt#connect()}), or runs one in process ({@code ShimOpt.Local}).
     *
     * @param options runc options, or {@code null} for the defaults
     */
    Mono<ShimClient> newShimClient(ShimOpt opt, RuncOptions options);

    /**
     * Deletes the bundle directory and the work directory. Both are attempted even when removing one fails, and
     * one error reports every failure; only a bundle directory that cannot even be renamed keeps the work
     * directory too, as the bundle then still exists. Deleting a bundle that is already gone succeeds. A crash midway never leaves
     * something that {@link RuntimePlugin#list} or {@link RuntimePlugin#load} would take for a bundle, and the
     * next delete of the id finishes what it left.
     *
     * <p>Nothing on another mount is ever removed, and symbolic links are removed, never followed. While anything
     * is mounted at or under either directory (a running container's rootfs, say) the delete fails with
     * {@link FailedPreconditionException} naming the bundle and the mount point, and nothing is renamed or
     * removed: the container stays fully controllable. A mount that appears during the delete stops it with the
     * same error, before anything on that mount is touched. Other storage failures arrive as
     * {@link ResourceExhaustedException}, {@link FailedPreconditionException} or {@link UnavailableException},
     * the system's error as the cause.
     *
     * <p>Refused with {@link FailedPreconditionException}, before anything is renamed or removed, while the bundle
     * is {@linkplain BundleInspection#inUse() in use}: its shim still runs, runc still has its container, or a
     * process of it lives. Delete the task and shut the shim down first, or use {@link RuntimePlugin#forceDelete}.
     */
    Mono<Void> delete();
}
