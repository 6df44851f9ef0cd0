package org.shimmer.runtime.linux.local;

import java.io.IOException;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.linux.RuntimeResources;
import org.shimmer.runtime.linux.runc.Runc;
import org.shimmer.runtime.linux.shim.TaskErrors;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import reactor.core.publisher.Mono;

/**
 * Local shims: one {@link LocalShimClient} per bundle for the life of the runtime's resources, found again from
 * disk by a new runtime instance.
 */
public final class LocalShims {

    /** The live local containers of one {@link RuntimeResources}. */
    private static final class Registry {
        final Map<String, LocalShimClient> clients = new ConcurrentHashMap<>();
    }

    private final RuntimeResources resources;

    public LocalShims(RuntimeResources resources) {
        this.resources = resources;
    }

    /** The local shim of {@code bundle}: the one already running here, one recovered from disk, or a new one. */
    public Mono<ShimClient> newShimClient(Bundle bundle, ShimOpt.Local opt, RuncOptions options) {
        RuncOptions runc = options != null ? options : RuncOptions.defaults();
        Registry registry = resources.shared(Registry.class, Registry::new);
        String key = bundle.path().toString();
        return Mono.fromCallable(() -> {
            LocalShimClient existing = registry.clients.get(key);
            if (existing != null) {
                return (ShimClient) existing;
            }
            ExitMonitor monitor;
            try {
                monitor = resources.exitMonitor();
                monitor.adoptOrphans();
            } catch (IOException e) {
                throw TaskErrors.classify("cannot watch container exits: " + e.getMessage(), e.getMessage(), e);
            }
            LocalShimClient client = new LocalShimClient(bundle,
                    new Runc(runc, bundle.namespace(), bundle.path(), resources.io()), resources, monitor,
                    opt.exchange(), () -> registry.clients.remove(key));
            LocalShimClient raced = registry.clients.putIfAbsent(key, client);
            if (raced != null) {
                return raced;
            }
            Optional<LocalRecord> record = LocalRecord.read(bundle.workDir());
            record.ifPresent(found -> client.recover(found.pid(), found.started()));
            return client;
        }).subscribeOn(resources.io());
    }
}
