package org.shimmer.runtime.events;

import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * Routes events from publishers to subscribers, as containerd's exchange does.
 *
 * <p>Guarantees every implementation keeps: publishing never waits for a subscriber; each subscriber has a
 * bounded {@link Backlog} with an explicit overflow policy; a subscriber's {@link EventFilter} is applied before an
 * envelope enters its backlog, so envelopes it did not ask for never take room there; envelopes published one
 * after another reach each subscriber in that order.
 */
public interface EventExchange {

    /**
     * Publishes an event stamped with the current time.
     *
     * @return completes once every current subscriber has the envelope in its backlog; fails with
     *     {@link org.shimmer.runtime.InvalidIdentifierException} for a bad namespace or topic
     */
    Mono<Void> publish(String namespace, String topic, Object event);

    /** Publishes an envelope made elsewhere (a shim, another exchange), keeping its timestamp. */
    Mono<Void> forward(Envelope envelope);

    /**
     * Subscribes to the envelopes that pass {@code filter}, from now on, with the given backlog. The subscription
     * ends when the subscriber cancels or the exchange is disposed.
     */
    Flux<Envelope> subscribe(EventFilter filter, Backlog backlog);

    /** {@link #subscribe(EventFilter, Backlog)} with the {@linkplain Backlog#defaults() default backlog}. */
    default Flux<Envelope> subscribe(EventFilter filter) {
        return subscribe(filter, Backlog.defaults());
    }
}
