package org.shimmer.runtime.linux.resources;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import reactor.core.Scannable;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;

/** Where output subscribers are called: bounded, one queue for all threads, and nothing left once closed. */
class OutputSchedulerTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(10);

    /**
     * A delivery that finds every thread busy goes to the first thread that frees. Reactor's bounded elastic
     * scheduler queues it on one thread it picks, where it can wait behind a subscriber that never returns while
     * another thread idles.
     */
    @Test
    void aDeliveryWaitingForAThreadGoesToTheFirstOneThatFrees() throws Exception {
        OutputScheduler output = new OutputScheduler("shimmer-test-output-free-", 2, 60);
        Scheduler scheduler = output.scheduler();
        assertThat(Scannable.from(scheduler).scan(Scannable.Attr.CAPACITY)).isEqualTo(2);
        CountDownLatch forever = new CountDownLatch(1);
        CountDownLatch brief = new CountDownLatch(1);
        CountDownLatch running = new CountDownLatch(2);
        try {
            scheduler.schedule(() -> {
                running.countDown();
                await(forever);
            });
            scheduler.schedule(() -> {
                running.countDown();
                await(brief);
            });
            assertThat(running.await(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)).isTrue();
            CountDownLatch delivered = new CountDownLatch(1);
            scheduler.schedule(delivered::countDown);
            assertThat(delivered.await(200, TimeUnit.MILLISECONDS)).as("delivered while both threads were held")
                    .isFalse();
            brief.countDown();
            assertThat(delivered.await(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)).isTrue();
        } finally {
            forever.countDown();
            assertThat(output.close(TIMEOUT)).isTrue();
        }
        assertNoThreadStartsWith("shimmer-test-output-free-");
    }

    /** A subscriber still blocked when close times out is interrupted, and its thread waited for. */
    @Test
    void closeInterruptsASubscriberStillBlockedAtTheTimeoutAndLeavesNoThread() throws Exception {
        OutputScheduler output = new OutputScheduler("shimmer-test-output-stuck-", 2, 60);
        CountDownLatch running = new CountDownLatch(1);
        AtomicBoolean interrupted = new AtomicBoolean();
        output.scheduler().schedule(() -> {
            running.countDown();
            try {
                new CountDownLatch(1).await();
            } catch (InterruptedException e) {
                interrupted.set(true);
            }
        });
        assertThat(running.await(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)).isTrue();

        assertThat(output.close(Duration.ofMillis(200))).as("ended within the timeout").isFalse();

        assertThat(interrupted).isTrue();
        assertNoThreadStartsWith("shimmer-test-output-stuck-");
    }

    /**
     * A delivery queued behind a subscriber still blocked when close times out runs once the interrupt frees that
     * thread: it may be a stream's last drain or the completion of an exchange the stop disposed. shutdownNow()
     * threw it away, and its subscriber waited for good.
     */
    @Test
    void aDeliveryQueuedBehindASubscriberBlockedAtTheTimeoutStillRuns() throws Exception {
        OutputScheduler output = new OutputScheduler("shimmer-test-output-queued-", 1, 60);
        CountDownLatch running = new CountDownLatch(1);
        output.scheduler().schedule(() -> {
            running.countDown();
            try {
                new CountDownLatch(1).await();
            } catch (InterruptedException e) {
                // Let go, as a subscriber blocked on a queue or a latch does.
            }
        });
        assertThat(running.await(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)).isTrue();
        CountDownLatch completed = new CountDownLatch(1);
        output.scheduler().schedule(completed::countDown);

        assertThat(output.close(Duration.ofMillis(200))).as("ended within the timeout").isFalse();

        assertThat(completed.await(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)).as("the queued delivery ran").isTrue();
        assertNoThreadStartsWith("shimmer-test-output-queued-");
    }

    /**
     * A stop run by an interrupted thread still waits for the subscribers, and leaves the interrupt set: the wait
     * failed at once, and the threads were stopped under subscribers that would have returned.
     */
    @Test
    void aCloseByAnInterruptedThreadStillWaitsAndKeepsTheInterrupt() throws Exception {
        OutputScheduler output = new OutputScheduler("shimmer-test-output-interrupted-", 2, 60);
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicBoolean interruptedSubscriber = new AtomicBoolean();
        output.scheduler().schedule(() -> {
            running.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                interruptedSubscriber.set(true);
            }
        });
        assertThat(running.await(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)).isTrue();
        Thread.ofPlatform().start(() -> {
            try {
                Thread.sleep(300);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            release.countDown();
        });

        Thread.currentThread().interrupt();
        boolean ended = output.close(TIMEOUT);
        boolean stillInterrupted = Thread.interrupted();

        assertThat(ended).as("every thread ended within the timeout").isTrue();
        assertThat(stillInterrupted).as("the caller's interrupt kept").isTrue();
        assertThat(interruptedSubscriber).as("the subscriber interrupted").isFalse();
        assertNoThreadStartsWith("shimmer-test-output-interrupted-");
    }

    /** Once closed, a delivery is refused at once, so the stream can end its subscriber with an error. */
    @Test
    void aDeliveryAfterCloseIsRefused() {
        OutputScheduler output = new OutputScheduler("shimmer-test-output-after-", 2, 60);
        Mono.fromRunnable(() -> { }).subscribeOn(output.scheduler()).block(TIMEOUT);
        assertThat(output.close(TIMEOUT)).isTrue();
        assertThatThrownBy(() -> output.scheduler().schedule(() -> { }))
                .isInstanceOf(RejectedExecutionException.class);
        assertNoThreadStartsWith("shimmer-test-output-after-");
    }

    /**
     * A host may stop the plugin from its own output subscriber: close then waits for every other thread, not for
     * its own, and leaves that thread's interrupt status as it was.
     */
    @Test
    void aCloseRunByASubscriberWaitsForEveryThreadButItsOwn() throws Exception {
        OutputScheduler output = new OutputScheduler("shimmer-test-output-self-", 2, 60);
        AtomicReference<Thread> closer = new AtomicReference<>();
        AtomicBoolean interruptedAfter = new AtomicBoolean(true);
        long began = System.nanoTime();
        Boolean ended = Mono.fromCallable(() -> {
            closer.set(Thread.currentThread());
            boolean closed = output.close(TIMEOUT);
            interruptedAfter.set(Thread.currentThread().isInterrupted());
            return closed;
        }).subscribeOn(output.scheduler()).block(TIMEOUT.multipliedBy(2));
        assertThat(ended).isTrue();
        assertThat(Duration.ofNanos(System.nanoTime() - began)).isLessThan(TIMEOUT);
        assertThat(interruptedAfter).as("the subscriber's thread interrupted by the close").isFalse();
        closer.get().join(TIMEOUT);
        assertNoThreadStartsWith("shimmer-test-output-self-");
    }

    private static void assertNoThreadStartsWith(String prefix) {
        assertThat(Thread.getAllStackTraces().keySet())
                .noneMatch(thread -> thread.getName().startsWith(prefix) && thread.isAlive());
    }

    private static void await(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
