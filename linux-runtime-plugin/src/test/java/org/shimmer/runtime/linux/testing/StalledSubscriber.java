package org.shimmer.runtime.linux.testing;

import org.reactivestreams.Subscription;
import org.shimmer.runtime.events.Envelope;
import reactor.core.publisher.BaseSubscriber;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Sinks;

/**
 * A subscriber that requests nothing until told to, like a host busy elsewhere: what it is sent meanwhile waits in
 * its backlog. Replays what it received to whoever waits on {@link #events()}.
 */
public final class StalledSubscriber extends BaseSubscriber<Envelope> {

    private final Sinks.Many<Envelope> received = Sinks.many().replay().all();

    @Override
    protected void hookOnSubscribe(Subscription subscription) {}

    @Override
    protected void hookOnNext(Envelope envelope) {
        received.tryEmitNext(envelope);
    }

    /** What arrived, in order, from the start. */
    public Flux<Envelope> events() {
        return received.asFlux();
    }
}
