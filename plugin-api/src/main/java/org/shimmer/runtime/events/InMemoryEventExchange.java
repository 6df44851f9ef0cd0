package org.shimmer.runtime.events;

import java.time.Clock;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import org.reactivestreams.Subscriber;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.Disposable;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Operators;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;

/**
 * The exchange hosts use by default: in memory, in one JVM.
 *
 * <p>Each subscriber owns a bounded backlog drained into it on the delivery scheduler
 * ({@link BacklogSubscription}). A publisher applies each subscriber's {@link EventFilter} itself, appends to the
 * backlogs of the matching subscribers only and returns, so a backlog holds nothing its subscriber did not ask
 * for. Subscribers are called on the delivery scheduler, so one that blocks or falls behind delays nobody but
 * itself and, once its backlog is full, loses events by its own {@link OverflowPolicy}; every such loss is counted
 * ({@link #dropped()}, {@link #subscriptions()}) and logged at most once per subscription every ten seconds. A
 * backlog takes envelopes under its lock in the order publishers offer them, so envelopes published one after
 * another keep their order for every subscriber.
 */
public final class InMemoryEventExchange implements EventExchange, Disposable {

    private static final Logger log = LoggerFactory.getLogger(InMemoryEventExchange.class);

    /** At most one drop warning per subscription per interval. */
    private static final Duration WARN_INTERVAL = Duration.ofSeconds(10);

    private static final BacklogSubscription[] NONE = {};

    private final Scheduler delivery;
    private final Clock clock;
    private final ValidNames names = new ValidNames();
    private final Object registration = new Object();
    /**
     * Replaced, never changed, under {@link #registration}: a publish walks a plain array, where a
     * CopyOnWriteArrayList made it allocate an iterator.
     */
    private volatile BacklogSubscription[] subscribers = NONE;
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
            names.requireValid(namespace, topic);
            Objects.requireNonNull(event, "event");
            dispatch(new Envelope(clock.instant(), namespace, topic, event));
        });
    }

    @Override
    public Mono<Void> forward(Envelope envelope) {
        return Mono.fromRunnable(() -> {
            Objects.requireNonNull(envelope, "envelope");
            names.requireValid(envelope.namespace(), envelope.topic());
            dispatch(envelope);
        });
    }

    @Override
    public Flux<Envelope> subscribe(EventFilter filter, Backlog backlog) {
        Objects.requireNonNull(filter, "filter");
        Objects.requireNonNull(backlog, "backlog");
        // Every subscription of the returned Flux has its own registration and drop count.
        return Flux.from(subscriber -> attach(subscriber, filter, backlog));
    }

    /** Envelopes dropped by a full backlog since this exchange was made, over all subscriptions, ended ones too. */
    public long dropped() {
        return dropped.get();
    }

    /** The live subscriptions, each with what it dropped so far. */
    public List<SubscriptionStats> subscriptions() {
        return Arrays.stream(subscribers)
                .map(subscriber -> new SubscriptionStats(subscriber.filter, subscriber.backlog,
                        subscriber.dropped.get()))
                .toList();
    }

    /** Completes every subscription; later publishes fail. */
    @Override
    public void dispose() {
        BacklogSubscription[] live;
        synchronized (registration) {
            disposed = true;
            live = subscribers;
        }
        for (BacklogSubscription subscriber : live) {
            subscriber.complete();
        }
    }

    @Override
    public boolean isDisposed() {
        return disposed;
    }

    private void attach(Subscriber<? super Envelope> subscriber, EventFilter filter, Backlog backlog) {
        BacklogSubscription subscription = new BacklogSubscription(Operators.toCoreSubscriber(subscriber), filter,
                backlog, delivery, this::detach, clock.millis());
        subscriber.onSubscribe(subscription);
        synchronized (registration) {
            if (!disposed) {
                // One cancelled in onSubscribe, or since, was detached or is about to be: never add it back.
                if (!subscription.isEnded()) {
                    BacklogSubscription[] grown = Arrays.copyOf(subscribers, subscribers.length + 1);
                    grown[grown.length - 1] = subscription;
                    subscribers = grown;
                }
                return;
            }
        }
        subscription.complete();
    }

    private void detach(BacklogSubscription subscription) {
        synchronized (registration) {
            BacklogSubscription[] current = subscribers;
            for (int i = 0; i < current.length; i++) {
                if (current[i] == subscription) {
                    BacklogSubscription[] shrunk = new BacklogSubscription[current.length - 1];
                    System.arraycopy(current, 0, shrunk, 0, i);
                    System.arraycopy(current, i + 1, shrunk, i, current.length - i - 1);
                    subscribers = shrunk;
                    return;
                }
            }
        }
    }

    private void dispatch(Envelope envelope) {
        if (disposed) {
            throw new IllegalStateException("the event exchange is disposed");
        }
        for (BacklogSubscription subscriber : subscribers) {
            if (subscriber.filter.matches(envelope)) {
                switch (subscriber.offer(envelope)) {
                    case DROPPED, FAILED -> onDropped(subscriber);
                    case QUEUED, ENDED -> {}
                }
            }
        }
    }

    private void onDropped(BacklogSubscription subscriber) {
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
}
