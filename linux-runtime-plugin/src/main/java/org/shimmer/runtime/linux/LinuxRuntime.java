package org.shimmer.runtime.linux;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.RejectedExecutionException;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.linux.bundle.BundleStore;
import org.shimmer.runtime.linux.cleanup.BundleInspector;
import org.shimmer.runtime.linux.cleanup.BundleReaper;
import org.shimmer.runtime.linux.cleanup.Launches;
import org.shimmer.runtime.linux.container.ContainerRunner;
import org.shimmer.runtime.linux.image.ImageStore;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.shim.TaskErrors;
import org.shimmer.runtime.linux.shim.local.LocalShims;
import org.shimmer.runtime.linux.shim.remote.RemoteShimRegistry;
import org.shimmer.runtime.linux.shim.remote.RemoteShims;
import org.shimmer.runtime.linux.shim.remote.TaskProbe;
import org.shimmer.runtime.linux.spec.CgroupPaths;
import org.shimmer.runtime.linux.spec.HostLimits;
import org.shimmer.runtime.linux.spec.OciJson;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.TaskState;
import org.shimmer.runtime.spec.Spec;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * The Linux runtime: the {@link RuntimePlugin} contract over the parts of this plugin. It owns no resources; the
 * schedulers it runs on belong to whoever made it (the plugin, or a test).
 */
public class LinuxRuntime implements RuntimePlugin {

    private final RuntimeResources resources;
    private final BundleStore bundles;
    private final LocalShims local;
    private final RemoteShimRegistry remoteRegistry;
    private final RemoteShims remote;
    private final BundleInspector inspector;
    private final TaskProbe probe;
    private final Path workRoot;
    private final BundleReaper reaper;
    private final ContainerRunner containers;
    private final ImageStore images;
    private final Path stateRoot;
    /** Per state root, the container runs and releases in flight: shared by every view, as the shims are. */
    private final ConcurrentMap<Path, ConcurrentMap<String, Mono<Void>>> runs;

    /**
     * @param config where bundles live and where shim events go
     * @param resources the threads, loops and servers to run on; owned by the caller
     */
    public LinuxRuntime(RuntimeConfig config, RuntimeResources resources) {
        this(config, Objects.requireNonNull(resources, "resources"), new LocalShims(resources),
                RemoteShimRegistry.of(resources), new ConcurrentHashMap<>());
    }

    /**
     * A view of {@code config} over what {@code shared} shares with its views: resources, local shims, the remote
     * shims' registry (events servers, forwarders) and the runs in flight. For a plugin's extension, of which PF4J
     * makes a new instance at every {@code getExtensions}: each one with shims of its own did not know the events
     * server another had bound, and forwarded local task events to it, so the host's exchange got each twice.
     */
    protected LinuxRuntime(RuntimeConfig config, LinuxRuntime shared) {
        this(config, shared.resources, shared.local, shared.remoteRegistry, shared.runs);
    }

    /** A view of {@code config} over the shims every view of this runtime shares. */
    // The runner only keeps the view to call it later, never during construction.
    @SuppressWarnings("this-escape")
    private LinuxRuntime(RuntimeConfig config, RuntimeResources resources, LocalShims local,
            RemoteShimRegistry remoteRegistry, ConcurrentMap<Path, ConcurrentMap<String, Mono<Void>>> runs) {
        this.resources = resources;
        this.stateRoot = config.stateRoot();
        this.workRoot = config.workRoot();
        this.probe = new TaskProbe(resources);
        this.runs = runs;
        this.local = local;
        this.remoteRegistry = remoteRegistry;
        // Local and remote shims publish into one exchange: a host never sees two streams.
        EventExchange exchange = config.events() != null ? config.events() : resources.exchange(config.stateRoot());
        RemoteShims remote = new RemoteShims(config, resources, remoteRegistry, exchange);
        this.remote = remote;
        EventExchange localEvents = remote.forwardingLocalEvents(exchange);
        this.inspector = new BundleInspector(config);
        this.bundles = new BundleStore(config, resources.io(), (bundle, opt, given) -> {
            // runc's root is derived from the state root unless given: never shared by two state roots.
            RuncOptions options = (given != null ? given : RuncOptions.defaults()).resolvedFor(config.stateRoot());
            // Recorded before anything starts, so a crash at any later point can still be cleaned up.
            return switch (opt) {
                case ShimOpt.Remote start -> remote.start(bundle, start, options,
                        Launches.record(bundle, start, options, resources.io()));
                case ShimOpt.Connect connect -> remote.connect(bundle, connect, options);
                case ShimOpt.Local inProcess -> local.newShimClient(bundle, localEvents, options, () -> {
                    Launches.recordLocal(bundle, options);
                    return null;
                });
            };
        }, inspector, () -> resources.closedFor(RuntimeResources.DELETE_GRACE));
        this.reaper = new BundleReaper(inspector, resources.io(),
                (namespace, id, options) -> bundles.load(namespace, id)
                        .flatMap(bundle -> local.newShimClient(bundle, localEvents, options)),
                bundles::delete,
                pid -> resources.exitMonitor().watchAny(pid),
                remote::endAttached);
        // State lives on disk: one store per view, and views of one image root share it through its lock.
        this.images = new ImageStore(config.imageRoot(), resources);
        this.containers = new ContainerRunner(this, images, resources.io(), resources.output(),
                runs.computeIfAbsent(config.stateRoot(), root -> new ConcurrentHashMap<>()));
    }

    @Override
    public Mono<Bundle> create(String namespace, String id, byte[] spec) {
        return whileRunning("create bundle", namespace, id, bundles.create(namespace, id, spec));
    }

    @Override
    public Mono<Bundle> create(String namespace, String id, Spec spec) {
        return whileRunning("create bundle", namespace, id, Mono.defer(() -> {
            if (spec == null) {
                return Mono.error(new InvalidSpecException("invalid spec for " + namespace + "/" + id + ": null"));
            }
            // A cgroup of this state root's own (see CgroupPaths); the create checks namespace and id before any
            // write, and the path is only read to hash it.
            return Mono.fromCallable(() -> {
                        String cgroupsPath = CgroupPaths.of(stateRoot, namespace, id);
                        HostLimits.check(spec, cgroupsPath);
                        return OciJson.spec(spec, cgroupsPath);
                    })
                    .subscribeOn(resources.io())
                    .onErrorMap(IOException.class, e -> new FailedPreconditionException("create " + namespace + "/"
                            + id + ": the state root " + stateRoot + " cannot be resolved: " + e.getMessage(), e))
                    .flatMap(json -> bundles.create(namespace, id, json));
        }));
    }

    @Override
    public Mono<Bundle> load(String namespace, String id) {
        return whileRunning("load bundle", namespace, id, bundles.load(namespace, id));
    }

    @Override
    public Flux<Bundle> list(String namespace) {
        return bundles.list(namespace).onErrorMap(LinuxRuntime::stopped,
                stopped -> unavailable("list bundles of " + namespace, stopped));
    }

    @Override
    public Mono<Void> delete(String namespace, String id) {
        return whileRunning("delete bundle", namespace, id, bundles.delete(namespace, id));
    }

    @Override
    public Mono<BundleInspection> inspect(String namespace, String id) {
        return whileRunning("inspect", namespace, id,
                Mono.fromCallable(() -> inspector.inspect(namespace, id)).subscribeOn(resources.io()));
    }

    @Override
    public Mono<TaskState> taskState(String namespace, String id) {
        return whileRunning("get the state of task", namespace, id, Mono.defer(() -> {
            Identifiers.requireValid("namespace", namespace);
            Identifiers.requireValid("id", id);
            return probe.state(namespace, id, workRoot.resolve(namespace).resolve(id));
        }));
    }

    @Override
    public Mono<Void> forceDelete(String namespace, String id) {
        return whileRunning("force-delete", namespace, id, reaper.forceDelete(namespace, id));
    }

    @Override
    public Mono<Container> run(RunRequest request) {
        // Only a run that got as far as the scheduler is refused by it: the request is not null then.
        return containers.run(request).onErrorMap(LinuxRuntime::stopped,
                stopped -> unavailable("run container " + request.namespace() + "/" + request.id(), stopped));
    }

    @Override
    public ImageStore images() {
        return images;
    }

    @Override
    public Flux<Envelope> events() {
        return remote.events();
    }

    @Override
    public RuntimeConfig config() {
        return bundles.config();
    }

    /**
     * {@code call}, whose refusal by the stopped runtime's scheduler (a view kept across a plugin stop) is an
     * {@link UnavailableException} naming the action, not Reactor's bare {@code RejectedExecutionException}.
     */
    private static <T> Mono<T> whileRunning(String action, String namespace, String id, Mono<T> call) {
        return call.onErrorMap(LinuxRuntime::stopped,
                stopped -> unavailable(action + " " + namespace + "/" + id, stopped));
    }

    /** A refusal of the stopped runtime's scheduler; not one of a full queue, which is too much work at once. */
    private static boolean stopped(Throwable error) {
        return error instanceof RejectedExecutionException && TaskErrors.rejected(error);
    }

    private static UnavailableException unavailable(String action, Throwable stopped) {
        return new UnavailableException(action + ": " + stopped.getMessage(), stopped);
    }

    @Override
    public RuntimePlugin withConfig(RuntimeConfig config) {
        return new LinuxRuntime(config, resources, local, remoteRegistry, runs);
    }
}
