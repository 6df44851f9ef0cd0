package org.shimmer.runtime.linux.shim.local;

import java.io.IOException;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.linux.cleanup.Launches;
import org.shimmer.runtime.linux.poll.ExitMonitor;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.runc.Runc;
import org.shimmer.runtime.linux.shim.TaskErrors;
import org.shimmer.runtime.shim.ShimClient;
import reactor.core.publisher.Mono;

/**
 * Local shims: one {@link LocalShimClient} per bundle for the life of the runtime (shared by all its views), found
 * again from disk by a new runtime instance. A bundle's client publishes into the exchange of the view that made it.
 */
public final class LocalShims {

    private final RuntimeResources resources;
    private final Map<String, LocalShimClient> clients = new ConcurrentHashMap<>();

    public LocalShims(RuntimeResources resources) {
        this.resources = resources;
    }

    /** The local shim of {@code bundle}: the one already running here, one recovered from disk, or a new one. */
    public Mono<ShimClient> newShimClient(Bundle bundle, EventExchange exchange, RuncOptions options) {
        return newShimClient(bundle, exchange, options, () -> null);
    }

    /**
     * {@link #newShimClient(Bundle, EventExchange, RuncOptions)}, running {@code first} (blocking: the launch
     * record) on the same io task, before the lookup: a hop of its own cost a lifecycle a quarter of a millisecond.
     */
    public Mono<ShimClient> newShimClient(Bundle bundle, EventExchange exchange, RuncOptions options,
            Callable<?> first) {
        RuncOptions runc = options != null ? options : RuncOptions.defaults();
        String key = bundle.path().toString();
        return Mono.fromCallable(() -> {
            first.call();
            // One lock from lookup to publication: a client is handed out only once it recovered what is on disk
            // (issue 10 review: a racing create on a client not yet recovered ran over a live container).
            synchronized (clients) {
                LocalShimClient existing = clients.get(key);
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
                AtomicReference<LocalShimClient> made = new AtomicReference<>();
                // Its create is cut by the stop, not waited for (see RuntimeResources.cutByStop).
                Runc runner = new Runc(runc, bundle.namespace(), bundle.path(), resources.io(), resources::cutByStop);
                LocalShimClient client = new LocalShimClient(bundle, runner, resources, monitor,
                        exchange, () -> clients.remove(key, made.get()));
                made.set(client);
                Optional<LocalRecord> record = LocalRecord.read(bundle.workDir()).or(() ->
                        Launches.heldByLocalShimHereOrGone(bundle) ? client.unrecordedInit() : Optional.empty());
                record.ifPresent(found -> client.recover(found, found.createdHere()));
                clients.put(key, client);
                return client;
            }
        }).subscribeOn(resources.io());
    }
}
