package org.shimmer.runtime.events;

import java.time.Clock;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import org.shimmer.runtime.Identifiers;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.Disposable;
import reactor.core.Exceptions;
import reactor.core.publisher.BufferOverflowStrategy;
import reactor.core.publisher.Flux;
import reactor.core.publisher.FluxSink;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;

/**
 * The exchange hosts use by default: in memory, in one JVM.
 *
 * <p>Each subscriber owns a pipeline {@code sink → bounded backlog → delivery scheduler}. A publisher only appends
 * to the backlogs of the matching subscribers and returns; subscribers are called on the delivery scheduler, so one
 * that blocks or falls behind delays nobody but itself and, once its backlog is full, loses events by its own
 * {@link OverflowPolicy}. A sink serializes concurrent publishers, so envelopes published one after another keep
 * their order for every subscriber.
 */
public final class InMemoryEventExchange implements EventExchange, Disposable {

    private static final Logger log = LoggerFactory.getLogger(InMemoryEventExchange.class);

    private final Scheduler delivery;
    private final Clock clock;
    private final CopyOnWriteArrayList<Subscriber> subscribers = new CopyOnWriteArrayList<>();
    private volatile boolean disposed;

    /** An exchange delivering on Reactor's shared {@link Schedulers#boundedElastic()}. */
    public InMemoryEventExchange() {
        this(Schedulers.boundedElastic(), Clock.systemUTC());
    }

    /**
     * An exchange delivering on {@code delivery} and stamping events with {@code clock}.
     *
     * @param delivery where subscribers are called; may block, so not a scheduler shared with event loops
     */
    public InMemoryEventExchange(Scheduler delivery, Clock clock) {
        this.delivery = Objects.requireNonNull(delivery, "delivery");
        this.clock = Objects.requireNonNull(clock, "clock");
    }

    @Override
    public Mono<Void> publish(String namespace, String topic, Object event) {
        return Mono.fromRunnable(() -> {
            Identifiers.requireValid("namespace", namespace);
            Topics.requireValid(topic);
            Objects.requireNonNull(event, "event");
            dispatch(new Envelope(clock.instant(), namespace, topic, event));
        });
    }

    @Override
    public Mono<Void> forward(Envelope envelope) {
        return Mono.fromRunnable(() -> {
            Objects.requireNonNull(envelope, "envelope");
            Identifiers.requireValid("namespace", envelope.namespace());
            Topics.requireValid(envelope.topic());
            dispatch(envelope);
        });
    }

    @Override
    public Flux<Envelope> subscribe(EventFilter filter, Backlog backlog) {
        Objects.requireNonNull(filter, "filter");
        Objects.requireNonNull(backlog, "backlog");
        AtomicLong dropped = new AtomicLong();
        Flux<Envelope> source = Flux.create(sink -> {
            Subscriber subscriber = new Subscriber(filter, sink);
            subscribers.add(subscriber);
            sink.onDispose(() -> subscribers.remove(subscriber));
            if (disposed) {
                sink.complete();
            }
        }, FluxSink.OverflowStrategy.BUFFER);
        // The backlog requests without bound from the sink, so the sink never holds anything: the backlog is the
        // only buffer that can grow, and it is bounded.
        return source
                .onBackpressureBuffer(backlog.capacity(), envelope -> onDropped(filter, dropped), strategy(backlog))
                .onErrorMap(Exceptions::isOverflow, error -> new EventOverflowException(
                        "subscriber " + filter + " fell more than " + backlog.capacity() + " events behind", error))
                .publishOn(delivery, 1);
    }

    /** Completes every subscription; later publishes fail. */
    @Override
    public void dispose() {
        disposed = true;
        for (Subscriber subscriber : subscribers) {
            subscriber.sink.complete();
        }
    }

    @Override
    public boolean isDisposed() {
        return disposed;
    }

    /** How many subscriptions are live; for tests. */
    int subscriberCount() {
        return subscribers.size();
    }

    private void dispatch(Envelope envelope) {
        if (disposed) {
            throw new IllegalStateException("the event exchange is disposed");
        }
        for (Subscriber subscriber : subscribers) {
            if (subscriber.filter.matches(envelope)) {
                subscriber.sink.next(envelope);
            }
        }
    }

    private static void onDropped(EventFilter filter, AtomicLong dropped) {
        long count = dropped.incrementAndGet();
        if (count == 1 || count % 1000 == 0) {
            log.warn("slow event subscriber {}: {} events dropped so far", filter, count);
        }
    }

    private static BufferOverflowStrategy strategy(Backlog backlog) {
        return switch (backlog.overflow()) {
            case DROP_OLDEST -> BufferOverflowStrategy.DROP_OLDEST;
            case DROP_NEWEST -> BufferOverflowStrategy.DROP_LATEST;
            case FAIL -> BufferOverflowStrategy.ERROR;
        };
    }

    private record Subscriber(EventFilter filter, FluxSink<Envelope> sink) {}
}
