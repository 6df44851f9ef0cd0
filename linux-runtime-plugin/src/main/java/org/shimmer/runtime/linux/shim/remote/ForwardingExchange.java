package org.shimmer.runtime.linux.shim.remote;

import java.time.Instant;
import org.shimmer.runtime.events.Backlog;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.EventFilter;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * The exchange local shims publish into: the runtime's own, and, once an envelope is in it, the same envelope
 * offered to the {@link EventForwarder} of the state root (which never waits). Subscribing is the runtime's.
 */
final class ForwardingExchange implements EventExchange, RuntimeResources.ExchangeInFront {

    private final EventExchange exchange;
    private final EventForwarder forwarder;

    ForwardingExchange(EventExchange exchange, EventForwarder forwarder) {
        this.exchange = exchange;
        this.forwarder = forwarder;
    }

    @Override
    public Mono<Void> publish(String namespace, String topic, Object event) {
        // The exchange validated namespace and topic, and stamped its own copy; this one is stamped now.
        return exchange.publish(namespace, topic, event)
                .doOnSuccess(published -> forwarder.offer(new Envelope(Instant.now(), namespace, topic, event)));
    }

    @Override
    public Mono<Void> forward(Envelope envelope) {
        return exchange.forward(envelope).doOnSuccess(forwarded -> forwarder.offer(envelope));
    }

    @Override
    public Flux<Envelope> subscribe(EventFilter filter, Backlog backlog) {
        return exchange.subscribe(filter, backlog);
    }

    @Override
    public EventExchange behind() {
        return exchange;
    }
}
