package org.shimmer.runtime.linux.container;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.reactivestreams.Subscription;
import reactor.core.CoreSubscriber;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Operators;
import reactor.util.context.Context;

/**
 * How far one subscriber of a flux got: what it asked for, what it was handed, and whether it is handling one now.
 * Tells a subscriber that waits for an envelope that will never come from one that is only behind: an envelope in
 * its backlog while it is busy with an earlier one is late, not lost.
 */
final class DeliveryProgress {

    private final AtomicLong requested = new AtomicLong();
    private final AtomicLong delivered = new AtomicLong();
    private volatile boolean busy;

    /** {@code flux}, its subscriber's requests and deliveries counted here. */
    <T> Flux<T> track(Flux<T> flux) {
        return flux.transform(Operators.<T, T>lift((scannable, actual) -> new Tracking<>(actual)));
    }

    /**
     * Completes once the subscriber went {@code quiet} long with nothing handed to it though it asked for more,
     * and was not busy with an envelope meanwhile: what it waits for is not in its backlog.
     */
    Mono<Void> starved(Duration quiet) {
        return Mono.defer(() -> {
            long mark = delivered.get();
            return Mono.delay(quiet).filter(tick -> !busy && delivered.get() == mark && requested.get() > mark);
        }).repeatWhenEmpty(ticks -> ticks).then();
    }

    private final class Tracking<T> implements CoreSubscriber<T>, Subscription {
        private final CoreSubscriber<? super T> actual;
        private Subscription upstream;

        Tracking(CoreSubscriber<? super T> actual) {
            this.actual = actual;
        }

        @Override
        public Context currentContext() {
            return actual.currentContext();
        }

        @Override
        public void onSubscribe(Subscription subscription) {
            upstream = subscription;
            actual.onSubscribe(this);
        }

        @Override
        public void onNext(T value) {
            busy = true;
            try {
                actual.onNext(value);
            } finally {
                // Counted before it is idle again: a look that finds it idle finds the count too.
                delivered.incrementAndGet();
                busy = false;
            }
        }

        @Override
        public void onError(Throwable failure) {
            actual.onError(failure);
        }

        @Override
        public void onComplete() {
            actual.onComplete();
        }

        @Override
        public void request(long n) {
            requested.accumulateAndGet(n, Operators::addCap);
            upstream.request(n);
        }

        @Override
        public void cancel() {
            upstream.cancel();
        }
    }
}
