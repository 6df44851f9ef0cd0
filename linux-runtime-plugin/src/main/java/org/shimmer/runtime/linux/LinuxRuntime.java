package org.shimmer.runtime.linux;

import java.util.Objects;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.linux.bundle.BundleStore;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;

/**
 * The Linux runtime: the {@link RuntimePlugin} contract over the parts of this plugin. It owns no resources; the
 * schedulers it runs on belong to whoever made it (the plugin, or a test).
 */
public class LinuxRuntime implements RuntimePlugin {

    private final Scheduler io;
    private final BundleStore bundles;

    /**
     * @param config where bundles live
     * @param io the bounded scheduler for blocking work (files, processes)
     */
    public LinuxRuntime(RuntimeConfig config, Scheduler io) {
        this.io = Objects.requireNonNull(io, "io");
        this.bundles = new BundleStore(config, io, org.shimmer.runtime.linux.bundle.ShimFactory.NONE);
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
    public RuntimeConfig config() {
        return bundles.config();
    }

    @Override
    public RuntimePlugin withConfig(RuntimeConfig config) {
        return new LinuxRuntime(config, io);
    }
}
