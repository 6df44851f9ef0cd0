package org.shimmer.runtime.events;

import java.time.Clock;
import java.time.Duration;
import java.util.List;
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
 * <p>Each subscriber owns a pipeline {@code sink → bounded backlog → delivery scheduler}. A publisher applies each
 * subscriber's {@link EventFilter} itself, appends to the backlogs of the matching subscribers only and returns, so a
 * backlog holds nothing its subscriber did not ask for. Subscribers are called on the delivery scheduler, so one
 * that blocks or falls behind delays nobody but itself and, once its backlog is full, loses events by its own
 * {@link OverflowPolicy}; every such loss is counted ({@link #dropped()}, {@link #subscriptions()}) and logged at
 * most once per subscription every ten seconds. A sink serializes concurrent publishers, so envelopes published
 * one after another keep their order for every subscriber.
 */
public final class InMemoryEventExchange implements EventExchange, Disposable {

    private static final Logger log = LoggerFactory.getLogger(InMemoryEventExchange.class);

    /** At most one drop warning per subscription per interval. */
    private static final Duration WARN_INTERVAL = Duration.ofSeconds(10);

    private final Scheduler delivery;
    private final Clock clock;
    private final CopyOnWriteArrayList<Subscriber> subscribers = new CopyOnWriteArrayList<>();
    private final AtomicLong dropped = new AtomicLong();
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
        // Deferred so that every subscription of the returned Flux has its own registration and drop count.
        return Flux.defer(() -> {
            Subscriber subscriber = new Subscriber(filter, backlog, clock.millis());
            Flux<Envelope> source = Flux.create(sink -> {
                subscriber.sink = sink;
                subscribers.add(subscriber);
                sink.onDispose(() -> subscribers.remove(subscriber));
                if (disposed) {
                    sink.complete();
                }
            }, FluxSink.OverflowStrategy.BUFFER);
            // The backlog requests without bound from the sink, so the sink never holds anything: the backlog is
            // the only buffer that can grow, and it is bounded.
            return source
                    .onBackpressureBuffer(backlog.capacity(), envelope -> onDropped(subscriber), strategy(backlog))
                    .onErrorMap(Exceptions::isOverflow, error -> new EventOverflowException(
                            "subscriber " + filter + " fell more than " + backlog.capacity() + " events behind",
                            error))
                    .publishOn(delivery, 1);
        });
    }

    /** Envelopes dropped by a full backlog since this exchange was made, over all subscriptions, ended ones too. */
    public long dropped() {
        return dropped.get();
    }

    /** The live subscriptions, each with what it dropped so far. */
    public List<SubscriptionStats> subscriptions() {
        return subscribers.stream()
                .map(subscriber -> new SubscriptionStats(subscriber.filter, subscriber.backlog,
                        subscriber.dropped.get()))
                .toList();
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

    private void onDropped(Subscriber subscriber) {
        dropped.incrementAndGet();
        long count = subscriber.dropped.incrementAndGet();
        // A subscriber that stays behind drops on every publish; one line per interval says so without flooding.
        long now = clock.millis();
        long due = subscriber.warnDue.get();
        if (now >= due && subscriber.warnDue.compareAndSet(due, now + WARN_INTERVAL.toMillis())) {
            log.warn("slow event subscriber {} (backlog {}, {}), events dropped so far: {}", subscriber.filter,
                    subscriber.backlog.capacity(), subscriber.backlog.overflow(), count);
        }
    }

    private static BufferOverflowStrategy strategy(Backlog backlog) {
        return switch (backlog.overflow()) {
            case DROP_OLDEST -> BufferOverflowStrategy.DROP_OLDEST;
            case DROP_NEWEST -> BufferOverflowStrategy.DROP_LATEST;
            case FAIL -> BufferOverflowStrategy.ERROR;
        };
    }

    /** One subscription: what it asked for, where its envelopes go, what it lost. */
    private static final class Subscriber {
        final EventFilter filter;
        final Backlog backlog;
        final AtomicLong dropped = new AtomicLong();
        /** When, by the exchange's clock, the next drop may be logged. */
        final AtomicLong warnDue;
        volatile FluxSink<Envelope> sink;

        Subscriber(EventFilter filter, Backlog backlog, long now) {
            this.filter = filter;
            this.backlog = backlog;
            this.warnDue = new AtomicLong(now);
        }
    }
}
