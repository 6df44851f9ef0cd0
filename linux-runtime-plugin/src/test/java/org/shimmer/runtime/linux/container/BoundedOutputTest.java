package org.shimmer.runtime.linux.container;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.reactivestreams.Subscriber;
import org.reactivestreams.Subscription;
import org.shimmer.runtime.FailedPreconditionException;
import reactor.core.CoreSubscriber;
import reactor.core.publisher.Sinks;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;
import reactor.test.StepVerifier;

/** The buffer's rules, fed by a sink in place of a process's stream (pure logic; the real streams: ContainerTest). */
class BoundedOutputTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(5);

    private final Sinks.Many<byte[]> source = Sinks.many().unicast().onBackpressureError();
    private final Scheduler io = Schedulers.newBoundedElastic(2, 100, "test-io");
    private final BoundedOutput output = new BoundedOutput("stdout of container ns/id", 8, io);

    @AfterEach
    void stopIo() {
        io.dispose();
    }

    private static byte[] bytes(String text) {
        return text.getBytes(UTF_8);
    }

    @Test
    void aSubscriberThatKeepsUpGetsEveryByteInOrderWhileItStaysWithinTheBound() {
        output.connect(source.asFlux());
        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)))
                .then(() -> source.tryEmitNext(bytes("01234567")))
                .expectNext("01234567")
                .then(() -> source.tryEmitNext(bytes("89ab")))
                .expectNext("89ab")
                .then(() -> {
                    source.tryEmitNext(bytes("cdef"));
                    source.tryEmitComplete();
                })
                .expectNext("cdef")
                .verifyComplete();
        assertThat(output.droppedBytes()).isZero();
    }

    /**
     * A chunk that comes while the subscriber waits is its whole: the bound trimmed it first, so a stream of
     * {@code withOutputBuffer(0)} gave a subscriber nothing at all, and one smaller than a read cut every chunk.
     */
    @Test
    void aChunkThatComesWhileTheSubscriberWaitsIsItsWholeWhateverTheBound() {
        BoundedOutput none = new BoundedOutput("stdout of container ns/none", 0, io);
        Sinks.Many<byte[]> nothingKept = Sinks.many().unicast().onBackpressureError();
        none.connect(nothingKept.asFlux());
        StepVerifier.create(none.flux().map(chunk -> new String(chunk, UTF_8)))
                .then(() -> nothingKept.tryEmitNext(bytes("one")))
                .expectNext("one")
                .then(() -> nothingKept.tryEmitNext(bytes("two")))
                .expectNext("two")
                .thenCancel()
                .verify(TIMEOUT);
        // Nobody waits: nothing is kept.
        nothingKept.tryEmitNext(bytes("lost"));
        nothingKept.tryEmitComplete();
        StepVerifier.create(none.flux()).verifyComplete();
        assertThat(none.droppedBytes()).isEqualTo(4);

        output.connect(source.asFlux());
        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)))
                .then(() -> source.tryEmitNext(bytes("0123456789abcdef")))
                .expectNext("0123456789abcdef")
                .then(source::tryEmitComplete)
                .verifyComplete();
        assertThat(output.droppedBytes()).isZero();
    }

    @Test
    void unreadBytesBeyondTheBoundAreDroppedOldestFirstAndCounted() {
        output.connect(source.asFlux());
        source.tryEmitNext(bytes("aaaa"));
        source.tryEmitNext(bytes("bbbb"));
        source.tryEmitNext(bytes("ccccc"));
        source.tryEmitComplete();

        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)))
                .expectNext("bbb", "ccccc")
                .verifyComplete();
        assertThat(output.droppedBytes()).isEqualTo(5);
    }

    @Test
    void aSubscriberThatStopsRequestingHoldsAtMostTheBound() {
        output.connect(source.asFlux());
        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)), 1)
                .then(() -> source.tryEmitNext(bytes("first")))
                .expectNext("first")
                .then(() -> {
                    for (int i = 0; i < 100; i++) {
                        source.tryEmitNext(bytes("x" + (i % 10)));
                    }
                })
                .thenRequest(Long.MAX_VALUE)
                .expectNext("x6", "x7", "x8", "x9")
                .then(source::tryEmitComplete)
                .verifyComplete();
        assertThat(output.droppedBytes()).isEqualTo(192);
    }

    @Test
    void aSecondSubscriberIsRefusedWhileTheFirstIsThereAndWelcomeAfterItCancelled() {
        output.connect(source.asFlux());
        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)))
                .then(() -> source.tryEmitNext(bytes("one")))
                .expectNext("one")
                .then(() -> StepVerifier.create(output.flux())
                        .expectErrorSatisfies(error -> assertThat(error)
                                .isInstanceOf(FailedPreconditionException.class)
                                .hasMessageContaining("stdout of container ns/id already has a subscriber"))
                        .verify(TIMEOUT))
                .thenCancel()
                .verify(TIMEOUT);

        source.tryEmitNext(bytes("two"));
        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)).take(1))
                .expectNext("two")
                .verifyComplete();
        source.tryEmitNext(bytes("three"));
        source.tryEmitComplete();
        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)))
                .expectNext("three")
                .verifyComplete();
        StepVerifier.create(output.flux()).verifyComplete();
    }

    @Test
    void theSourcesErrorComesAfterTheBufferedBytesToEverySubscriber() {
        output.connect(source.asFlux());
        source.tryEmitNext(bytes("last"));
        source.tryEmitError(new IllegalStateException("read failed"));
        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)))
                .expectNext("last")
                .verifyErrorMessage("read failed");
        StepVerifier.create(output.flux()).verifyErrorMessage("read failed");
    }

    @Test
    void aDisconnectedStreamEndsAfterWhatWasBuffered() {
        output.connect(source.asFlux());
        source.tryEmitNext(bytes("kept"));
        output.disconnect();
        assertThat(source.currentSubscriberCount()).isZero();
        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)))
                .expectNext("kept")
                .verifyComplete();
    }

    /** Review #2: a subscriber blocked in onNext (a slow pipe) neither grows the buffer nor stalls the source. */
    @Test
    void aBlockedSubscriberNeitherGrowsTheBufferNorRunsOnTheSourcesThread() throws InterruptedException {
        output.connect(source.asFlux());
        CountDownLatch inOnNext = new CountDownLatch(1);
        CountDownLatch unblock = new CountDownLatch(1);
        Set<Thread> onNextThreads = ConcurrentHashMap.newKeySet();
        StepVerifier.create(output.flux().doOnNext(chunk -> {
                    onNextThreads.add(Thread.currentThread());
                    inOnNext.countDown();
                    await(unblock);
                }))
                .then(() -> {
                    source.tryEmitNext(new byte[1024]);
                    await(inOnNext);
                    for (int i = 0; i < 1000; i++) {
                        source.tryEmitNext(new byte[1024]);
                        assertThat(output.bufferedBytes()).isLessThanOrEqualTo(8);
                    }
                    unblock.countDown();
                    source.tryEmitComplete();
                })
                .expectNextCount(1)
                .thenConsumeWhile(chunk -> true)
                .expectComplete()
                .verify(TIMEOUT);
        // The chunk that came while it was blocked with demand left was its: delivered whole, outside the bound.
        assertThat(output.droppedBytes()).isGreaterThanOrEqualTo(999 * 1024 - 8);
        assertThat(onNextThreads).doesNotContain(Thread.currentThread());
        assertThat(onNextThreads).allSatisfy(thread -> assertThat(thread.getName()).startsWith("test-io"));
    }

    /** Review #3: the source ending while onSubscribe runs gives onComplete only after onSubscribe returned. */
    @Test
    void noTerminalSignalBeforeOnSubscribeReturned() throws InterruptedException {
        output.connect(source.asFlux());
        AtomicBoolean subscribing = new AtomicBoolean();
        AtomicReference<String> broken = new AtomicReference<>();
        CountDownLatch completed = new CountDownLatch(1);
        output.flux().subscribe(new Subscriber<byte[]>() {
            @Override
            public void onSubscribe(Subscription subscription) {
                subscribing.set(true);
                subscription.request(Long.MAX_VALUE);
                source.tryEmitComplete();
                subscribing.set(false);
            }

            @Override
            public void onNext(byte[] chunk) {
                broken.set("onNext without bytes");
            }

            @Override
            public void onError(Throwable error) {
                broken.set("onError " + error);
            }

            @Override
            public void onComplete() {
                if (subscribing.get()) {
                    broken.set("onComplete during onSubscribe");
                }
                completed.countDown();
            }
        });
        assertThat(completed.await(5, TimeUnit.SECONDS)).isTrue();
        assertThat(broken.get()).isNull();
    }

    /**
     * Review #7: a throwing onNext gets onError and frees the stream; the source (the FIFO) is still read. A core
     * subscriber, as Reactor's own wrapper of a plain one swallows the onError after a throwing onNext.
     */
    @Test
    void aSubscriberWhoseOnNextThrowsIsDetachedWithItsErrorAndTheSourceKeepsBeingRead() {
        output.connect(source.asFlux());
        AtomicReference<Throwable> received = new AtomicReference<>();
        CountDownLatch failed = new CountDownLatch(1);
        output.flux().subscribe(new CoreSubscriber<byte[]>() {
            @Override
            public void onSubscribe(Subscription subscription) {
                subscription.request(Long.MAX_VALUE);
            }

            @Override
            public void onNext(byte[] chunk) {
                throw new IllegalStateException("host bug");
            }

            @Override
            public void onError(Throwable error) {
                received.set(error);
                failed.countDown();
            }

            @Override
            public void onComplete() {
            }
        });
        assertThat(source.tryEmitNext(bytes("boom"))).isEqualTo(Sinks.EmitResult.OK);
        await(failed);
        assertThat(received.get()).hasMessage("host bug");
        assertThat(source.currentSubscriberCount()).isOne();

        assertThat(source.tryEmitNext(bytes("after"))).isEqualTo(Sinks.EmitResult.OK);
        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)))
                .expectNext("after")
                .then(source::tryEmitComplete)
                .expectComplete()
                .verify(TIMEOUT);
    }

    /** Subscribing, cancelling and ending race on several threads; every subscriber ends or cancels, none hangs. */
    @Test
    void subscribersRacingTheEndAndTheirCancelsAlwaysSettle() {
        for (int round = 0; round < 200; round++) {
            Sinks.Many<byte[]> racing = Sinks.many().unicast().onBackpressureError();
            BoundedOutput raced = new BoundedOutput("stdout of container ns/race", 8, io);
            raced.connect(racing.asFlux());
            racing.tryEmitNext(bytes("x"));
            Thread ender = Thread.ofPlatform().start(racing::tryEmitComplete);
            StepVerifier.create(raced.flux().take(1).map(chunk -> new String(chunk, UTF_8)))
                    .expectNext("x")
                    .expectComplete()
                    .verify(TIMEOUT);
            StepVerifier.create(raced.flux()).expectComplete().verify(TIMEOUT);
            joinQuietly(ender);
        }
    }

    private static void joinQuietly(Thread thread) {
        try {
            thread.join(TIMEOUT);
        } catch (InterruptedException interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private static void await(CountDownLatch latch) {
        try {
            assertThat(latch.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        } catch (InterruptedException interrupted) {
            Thread.currentThread().interrupt();
            throw new AssertionError(interrupted);
        }
    }
}
