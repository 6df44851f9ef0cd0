package org.shimmer.runtime.linux.shim.remote;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Function;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.ttrpc.TtrpcServerHandle;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;

/**
 * What every view of one runtime ({@code withConfig}) shares about remote shims: which client may create each
 * bundle's task, and the events server of each state root. Made once per runtime, disposed when its resources close.
 */
public final class RemoteShimRegistry implements Disposable {

    private static final Logger log = LoggerFactory.getLogger(RemoteShimRegistry.class);

    final TaskClaims claims = new TaskClaims();
    private final Map<Path, Mono<TtrpcServerHandle>> eventServers = new ConcurrentHashMap<>();
    private final Queue<TtrpcServerHandle> bound = new ConcurrentLinkedQueue<>();
    private final Map<Path, EventForwarder> forwarders = new ConcurrentHashMap<>();
    private final AtomicInteger binding = new AtomicInteger();
    private volatile boolean disposed;
    private volatile boolean drained;

    /** A registry whose servers stop when {@code resources} close. */
    public static RemoteShimRegistry of(RuntimeResources resources) {
        return (RemoteShimRegistry) resources.track(new RemoteShimRegistry());
    }

    private RemoteShimRegistry() {}

    /** The events server for {@code socket}: bound on first use, then shared; a failed bind is retried next time. */
    Mono<TtrpcServerHandle> eventServer(Path socket, Function<Path, Mono<TtrpcServerHandle>> bind) {
        return eventServers.computeIfAbsent(socket, path -> Mono.defer(() -> {
                    // Counted down before the outcome goes on (doFinally ran after it): a host that stops the plugin
                    // from its callback, on the bind's own thread, had the stop wait for this bind until timeout.
                    AtomicBoolean ended = new AtomicBoolean();
                    Runnable end = () -> {
                        if (ended.compareAndSet(false, true)) {
                            binding.decrementAndGet();
                        }
                    };
                    return bind.apply(path)
                            .doOnNext(this::bound)
                            .doOnSubscribe(subscription -> binding.incrementAndGet())
                            .doOnSuccess(server -> end.run())
                            .doOnError(error -> end.run())
                            .doOnCancel(end);
                })
                .cache(server -> Duration.ofMillis(Long.MAX_VALUE), error -> Duration.ZERO, () -> Duration.ZERO));
    }

    /** Whether this process serves the events socket {@code socket}. */
    boolean serves(Path socket) {
        return bound.stream().anyMatch(server -> server.socket().equals(socket));
    }

    /** The forwarder of local task events to {@code socket}: made on first use, then shared, disposed with this. */
    EventForwarder forwarder(Path socket, RuntimeResources resources) {
        EventForwarder forwarder = forwarders.computeIfAbsent(socket, path -> new EventForwarder(path, resources, this));
        if (disposed) {
            // Asked for after (or while) this registry was disposed, by a view of a stopped runtime: it must not
            // outlive the dispose that missed it. A disposed forwarder drops what it is offered, quietly.
            forwarder.dispose();
        }
        return forwarder;
    }

    private void bound(TtrpcServerHandle server) {
        bound.add(server);
        if (drained && bound.remove(server)) {
            // Bound after the stop stopped waiting for it: the loops may be closed already, so no waiting on
            // them here (on an io thread, that held the io scheduler's close for its whole timeout).
            server.dispose();
        }
    }

    @Override
    public void dispose() {
        disposed = true;
        // First: the queued events go out while nothing else has stopped yet.
        forwarders.values().forEach(EventForwarder::dispose);
        forwarders.clear();
        // A first bind still under way (an events() racing the stop) ends before the loops it binds on close: a
        // server bound once they were closed could not be stopped, and its socket stayed.
        long deadline = System.nanoTime() + RuntimeResources.STOP_TIMEOUT.toNanos();
        while (binding.get() > 0 && System.nanoTime() - deadline < 0) {
            LockSupport.parkNanos(1_000_000);
        }
        if (binding.get() > 0) {
            log.warn("a bind of an events server did not end within {}; stopping without it",
                    RuntimeResources.STOP_TIMEOUT);
        }
        drained = true;
        for (TtrpcServerHandle server; (server = bound.poll()) != null; ) {
            try {
                server.disposeNow(RuntimeResources.STOP_TIMEOUT);
            } catch (RuntimeException e) {
                log.warn("the events server on {} did not stop cleanly", server.socket(), e);
            }
        }
        eventServers.clear();
    }

    @Override
    public boolean isDisposed() {
        return disposed;
    }
}
