package org.shimmer.runtime.linux.poll;

import java.util.concurrent.atomic.AtomicBoolean;
import org.reactivestreams.Publisher;
import org.reactivestreams.Subscriber;
import org.reactivestreams.Subscription;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Operators;

/**
 * A host's stdin publisher, its broken rules (Reactive Streams 1.9, 2.13, 3.16) turned into its error: a
 * {@code subscribe} or {@code request} that throws, or a {@code null} chunk, ends stdin as an error signal does,
 * closing it for the process. Such a throw escaped to the io thread that subscribed or asked (Reactor logged it as an
 * uncaught exception of its scheduler), the copy was never told, and the process waited for stdin for good.
 */
final class GuardedStdin implements Publisher<byte[]> {

    private static final Logger log = LoggerFactory.getLogger(GuardedStdin.class);

    private final Publisher<byte[]> source;

    GuardedStdin(Publisher<byte[]> source) {
        this.source = source;
    }

    @Override
    public void subscribe(Subscriber<? super byte[]> actual) {
        // Serialized: a request that throws on the copy's thread while the publisher delivers on its own made an
        // error that ran inside the copy's onNext (Reactive Streams 1.3); it now waits for that onNext to return.
        Guard guard = new Guard(Operators.serialize(Operators.toCoreSubscriber(actual)));
        try {
            source.subscribe(guard);
        } catch (Throwable thrown) {
            guard.fail(thrown);
        }
    }

    private static final class Guard implements Subscriber<byte[]>, Subscription {
        private final Subscriber<? super byte[]> actual;
        private final AtomicBoolean subscribed = new AtomicBoolean();
        private final AtomicBoolean ended = new AtomicBoolean();
        private volatile Subscription upstream = Operators.emptySubscription();

        Guard(Subscriber<? super byte[]> actual) {
            this.actual = actual;
        }

        @Override
        public void onSubscribe(Subscription subscription) {
            if (!subscribed.compareAndSet(false, true)) {
                subscription.cancel();
                return;
            }
            upstream = subscription;
            actual.onSubscribe(this);
        }

        @Override
        public void onNext(byte[] chunk) {
            if (ended.get()) {
                return;
            }
            if (chunk == null) {
                fail(new NullPointerException("the stdin publisher sent a null chunk"));
                return;
            }
            actual.onNext(chunk);
        }

        @Override
        public void onError(Throwable error) {
            if (ended.compareAndSet(false, true)) {
                actual.onError(error);
            }
        }

        @Override
        public void onComplete() {
            if (ended.compareAndSet(false, true)) {
                actual.onComplete();
            }
        }

        @Override
        public void request(long n) {
            try {
                upstream.request(n);
            } catch (Throwable thrown) {
                fail(thrown);
            }
        }

        @Override
        public void cancel() {
            try {
                upstream.cancel();
            } catch (Throwable thrown) {
                log.debug("the stdin publisher threw from cancel", thrown);
            }
        }

        /** Ends the copy with {@code error}, given a subscription first if the publisher never gave one. */
        void fail(Throwable error) {
            if (subscribed.compareAndSet(false, true)) {
                actual.onSubscribe(this);
            } else {
                cancel();
            }
            onError(error);
        }
    }
}
