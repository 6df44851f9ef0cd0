package org.shimmer.runtime;

import org.pf4j.ExtensionPoint;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.image.Images;
import org.shimmer.runtime.shim.TaskState;
import org.shimmer.runtime.spec.Spec;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * The extension point a container runtime plugin contributes to its host.
 *
 * <p>Every operation is lazy: nothing touches the disk until the returned publisher is subscribed. Errors arrive
 * as error signals, never as exceptions thrown by the method itself, and are one of the {@link ShimmerException}
 * subtypes when the caller can react to them.
 */
public interface RuntimePlugin extends ExtensionPoint {

    /**
     * The version of this API (SemVer): a minor bump adds, a major one breaks (below 1.0.0 a minor bump may
     * break). A plugin declares the range it was built for in its {@code plugin.requires} ({@code ^0.4.0} for this
     * one); a host sets this as PF4J's system version ({@code PluginManager#setSystemVersion}), so PF4J refuses
     * a plugin built for another API. Single-sourced with the build's {@code shimmer.api.version} property.
     */
    String API_VERSION = "0.4.0";

    /**
     * Creates the bundle {@code <stateRoot>/<namespace>/<id>} holding {@code rootfs/} and {@code config.json}
     * (the spec bytes, unchanged), and its work directory {@code <workRoot>/<namespace>/<id>}.
     *
     * @param namespace a valid {@linkplain Identifiers identifier}
     * @param id a valid {@linkplain Identifiers identifier}, unique in the namespace
     * @param spec an OCI runtime spec: must parse as a JSON object
     * @return the new bundle; fails with {@link AlreadyExistsException}, {@link InvalidIdentifierException},
     *     {@link InvalidSpecException}, {@link ResourceExhaustedException} (no space left: names the bundle and the
     *     path, the system's error is the cause), {@link FailedPreconditionException} (a root that is not a
     *     writable directory, or a namespace whose directory would hold the other root) or
     *     {@link UnavailableException} (any other storage failure), and then leaves nothing behind; so does a
     *     cancel that comes before the bundle is returned. Hidden trees an earlier delete of the same id left are
     *     ignored, never reused.
     */
    Mono<Bundle> create(String namespace, String id, byte[] spec);

    /**
     * {@link #create(String, String, byte[])} with {@code spec} written as OCI JSON. The bundle's cgroup is
     * {@code /<namespace>/<id>}, as containerd names it.
     *
     * @param spec a built spec (validated by {@link Spec.Builder#build()}); null fails with
     *     {@link InvalidSpecException} and nothing is written
     */
    Mono<Bundle> create(String namespace, String id, Spec spec);

    /**
     * Loads an existing bundle.
     *
     * @return the bundle; fails with {@link NotFoundException} when there is no complete bundle of that id
     */
    Mono<Bundle> load(String namespace, String id);

    /**
     * Lists the complete bundles of a namespace; an unknown namespace has none. Bundles being created or deleted
     * are never listed. A namespace that cannot be read fails with the storage errors of {@link #create}.
     */
    Flux<Bundle> list(String namespace);

    /**
     * Deletes whatever is on disk for this namespace and id, complete bundle or not: the way to clean up after a
     * create that crashed midway. Same guarantees as {@link Bundle#delete()}; like it, refuses with
     * {@link FailedPreconditionException} (and changes nothing) while the bundle is {@linkplain
     * BundleInspection#inUse() in use}.
     */
    Mono<Void> delete(String namespace, String id);

    /**
     * What is alive for this namespace and id right now, read from the machine: the shim process, runc's view of
     * the container, processes that belong to the bundle, mounts under it. Works for any bundle of this state root,
     * also one whose host crashed or that a create left half-made; an absent bundle is reported as not
     * {@linkplain BundleInspection#present() present}.
     *
     * @return fails only with {@link InvalidIdentifierException}, or a {@link ShimmerException} when the machine
     *     cannot be read
     */
    Mono<BundleInspection> inspect(String namespace, String id);

    /**
     * The bundle's init task as its live remote shim reports it ({@code State}), asked without reattaching: unlike
     * {@code ShimOpt.connect()}, nothing is written or removed, no events server is bound and
     * a dead shim is not cleaned up, so a listing ({@code ctr task ls}) only reads. {@link #inspect} tells the rest.
     *
     * @return empty when no remote shim is recorded for the bundle, none answers, or its shim has no task; fails
     *     with {@link InvalidIdentifierException}, a {@link ShimmerException} when the shim answers with an error,
     *     or {@link UnavailableException} when the plugin stops before the shim answered
     */
    Mono<TaskState> taskState(String namespace, String id);

    /**
     * Stops everything that belongs to the bundle, then deletes it: the way out after a host crashed at any point
     * of create, shim start or task start, or when a container must go whatever its state. In order: a container
     * of a local shim running in this JVM is killed through that shim; runc kills and deletes the container in the
     * recorded runc root; every process that belongs to the bundle (its shim, identified by its working directory
     * and command line, never by a pid file alone) gets SIGKILL; every mount at or under the bundle and work
     * directories is detached ({@code MNT_DETACH}), never removed through; the shim's socket is removed; then the
     * bundle is deleted as by {@link #delete}. A local container held by another live JVM is killed through runc;
     * that JVM only sees it exit. Idempotent: a bundle with nothing alive, or none at all, is just deleted.
     *
     * @return fails with {@link FailedPreconditionException} when something still lives after the attempt, naming
     *     it
     */
    Mono<Void> forceDelete(String namespace, String id);

    /**
     * Runs a container: creates its bundle (the spec with its root path set to the request's rootfs), gets its shim,
     * creates the task with the request's stdin and output streams, starts it, and hands out the {@link Container},
     * which the caller must {@linkplain Container#release() release}:
     *
     * <pre>{@code
     * Mono.usingWhen(runtime.run(request), container -> container.exit(), Container::release)
     * }</pre>
     *
     * A failure at any step, or a cancel at any point, releases whatever the run made, in reverse (the steps begun
     * run to their end first): no bundle, shim, runc container, mount, FIFO or process is left. A run of a namespace
     * and id whose earlier run is still going or being undone waits for it first, so a cancelled run can be retried
     * at once.
     *
     * @return the started container; fails with the errors of {@link #create}, {@link Bundle#newShimClient} and the
     *     shim's create and start, or {@link FailedPreconditionException} when the rootfs is not a directory
     */
    Mono<Container> run(RunRequest request);

    /** The image store under this runtime's {@linkplain RuntimeConfig#imageRoot() image root}. */
    Images images();

    /**
     * The task events of every shim of this runtime's state root, from subscription on: starts listening for
     * shims (detached ones included) if nothing does yet. Ends with {@link UnavailableException} when the runtime
     * stops (the plugin is stopped or reloaded), unless the host gave its own exchange in the config.
     */
    Flux<Envelope> events();

    /** The configuration this view of the runtime works with. */
    RuntimeConfig config();

    /**
     * Returns a view of the same runtime that works with another configuration; this one is unchanged.
     * Both share the plugin's resources, so both stop working when the plugin stops.
     */
    RuntimePlugin withConfig(RuntimeConfig config);
}
