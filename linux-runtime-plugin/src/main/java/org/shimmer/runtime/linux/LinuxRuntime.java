package org.shimmer.runtime.linux;

import java.util.Objects;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.linux.bundle.BundleStore;
import org.shimmer.runtime.linux.local.LocalShims;
import org.shimmer.runtime.linux.shim.remote.RemoteShims;
import org.shimmer.runtime.shim.ShimOpt;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * The Linux runtime: the {@link RuntimePlugin} contract over the parts of this plugin. It owns no resources; the
 * schedulers it runs on belong to whoever made it (the plugin, or a test).
 */
public class LinuxRuntime implements RuntimePlugin {

    private final RuntimeResources resources;
    private final BundleStore bundles;
    private final RemoteShims remote;

    /**
     * @param config where bundles live and where shim events go
     * @param resources the threads, loops and servers to run on; owned by the caller
     */
    public LinuxRuntime(RuntimeConfig config, RuntimeResources resources) {
        this.resources = Objects.requireNonNull(resources, "resources");
        RemoteShims remote = new RemoteShims(config, resources);
        this.remote = remote;
        LocalShims local = new LocalShims(resources);
        this.bundles = new BundleStore(config, resources.io(), (bundle, opt, given) -> {
            // runc's root is derived from the state root unless given: never shared by two state roots.
            RuncOptions options = (given != null ? given : RuncOptions.defaults()).resolvedFor(config.stateRoot());
            return switch (opt) {
                case ShimOpt.Remote start -> remote.start(bundle, start, options);
                case ShimOpt.Connect connect -> remote.connect(bundle, connect, options);
                case ShimOpt.Local inProcess -> local.newShimClient(bundle, inProcess, options);
            };
        });
    }

    @Override
    public Mono<Bundle> create(String namespace, String id, byte[] spec) {
        return bundles.create(namespace, id, spec);
    }

    @Override
    public Mono<Bundle> load(String namespace, String id) {
        return bundles.load(namespace, id);
    }

    @Override
    public Flux<Bundle> list(String namespace) {
        return bundles.list(namespace);
    }

    @Override
    public Mono<Void> delete(String namespace, String id) {
        return bundles.delete(namespace, id);
    }

    @Override
    public Flux<Envelope> events() {
        return remote.events();
    }

    @Override
    public RuntimeConfig config() {
        return bundles.config();
    }

    @Override
    public RuntimePlugin withConfig(RuntimeConfig config) {
        return new LinuxRuntime(config, resources);
    }
}
