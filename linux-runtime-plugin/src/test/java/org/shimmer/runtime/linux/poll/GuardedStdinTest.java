package org.shimmer.runtime.linux.poll;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.reactivestreams.Publisher;
import org.reactivestreams.Subscriber;
import org.reactivestreams.Subscription;

class GuardedStdinTest {

    /**
     * A publisher whose request throws while it delivers a chunk on a thread of its own: the error the guard makes of
     * the throw reaches the copy after that chunk, never during it (Reactive Streams 1.3). Signalled at once, on the
     * thread that asked, the copy's onError ran inside its onNext.
     */
    @Test
    void aRequestThatThrowsWhileAChunkIsDeliveredEndsTheCopyAfterThatChunkNotDuringIt() throws Exception {
        CountDownLatch inOnNext = new CountDownLatch(1);
        CountDownLatch leaveOnNext = new CountDownLatch(1);
        CountDownLatch ended = new CountDownLatch(1);
        AtomicBoolean delivering = new AtomicBoolean();
        List<String> signals = new CopyOnWriteArrayList<>();
        AtomicInteger requests = new AtomicInteger();
        Publisher<byte[]> broken = subscriber -> subscriber.onSubscribe(new Subscription() {
            @Override
            public void request(long n) {
                if (requests.incrementAndGet() == 1) {
                    Thread.ofPlatform().start(() -> subscriber.onNext(new byte[] {'a'}));
                    return;
                }
                throw new IllegalStateException("broken request");
            }

            @Override
            public void cancel() {
            }
        });
        Subscription[] given = new Subscription[1];

        new GuardedStdin(broken).subscribe(new Subscriber<byte[]>() {
            @Override
            public void onSubscribe(Subscription subscription) {
                given[0] = subscription;
                subscription.request(1);
            }

            @Override
            public void onNext(byte[] chunk) {
                delivering.set(true);
                signals.add("next");
                inOnNext.countDown();
                try {
                    leaveOnNext.await(5, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                delivering.set(false);
            }

            @Override
            public void onError(Throwable error) {
                signals.add(delivering.get() ? "error during next" : "error");
                ended.countDown();
            }

            @Override
            public void onComplete() {
                signals.add("complete");
                ended.countDown();
            }
        });
        assertThat(inOnNext.await(5, TimeUnit.SECONDS)).isTrue();
        given[0].request(1);
        leaveOnNext.countDown();

        assertThat(ended.await(5, TimeUnit.SECONDS)).as("the copy was ended").isTrue();
        assertThat(signals).containsExactly("next", "error");
    }
}
