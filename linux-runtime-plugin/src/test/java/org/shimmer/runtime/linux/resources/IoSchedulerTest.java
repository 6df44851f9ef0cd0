package org.shimmer.runtime.linux.resources;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;

class IoSchedulerTest {

    private static final int THREADS = 2;

    /**
     * Reactor's bounded elastic scheduler, once it has made all its threads, picks a busy one for each new worker;
     * a caller that read the scheduler's state just before {@code dispose()} marked it shut down loops for good in
     * that pick, as every busy thread is then marked evicted (a host thread calling into the plugin while it is
     * stopped spun at 100% of a core, seen about once in ten stops with work asked for every millisecond). Close
     * must let no caller into Reactor's scheduler while it disposes it.
     */
    @Test
    void callersRacingCloseAreRefusedAndNoneSpins() throws Exception {
        for (int round = 0; round < 300; round++) {
            IoScheduler io = new IoScheduler("shimmer-test-io-" + round + "-", THREADS, 100, 60);
            Scheduler scheduler = io.scheduler();
            madeEveryThread(scheduler);
            AtomicBoolean closed = new AtomicBoolean();
            AtomicReference<Throwable> unexpected = new AtomicReference<>();
            CountDownLatch started = new CountDownLatch(2);
            List<Thread> callers = new ArrayList<>();
            for (int c = 0; c < 2; c++) {
                boolean workers = c == 0;
                Thread caller = Thread.ofPlatform().name("caller-" + round + "-" + c).start(() -> {
                    started.countDown();
                    while (!closed.get()) {
                        try {
                            if (workers) {
                                scheduler.createWorker().dispose();
                            } else {
                                scheduler.schedule(() -> { });
                            }
                        } catch (RejectedExecutionException expected) {
                            // Refused: the scheduler is closing.
                        } catch (Throwable t) {
                            unexpected.compareAndSet(null, t);
                        }
                    }
                });
                callers.add(caller);
            }
            started.await();
            assertThat(io.close(Duration.ofSeconds(5))).isTrue();
            closed.set(true);
            for (Thread caller : callers) {
                caller.join(TimeUnit.SECONDS.toMillis(10));
                assertThat(caller.isAlive()).as("%s still in the scheduler after close (round %d): %s",
                        caller.getName(), round, List.of(caller.getStackTrace())).isFalse();
            }
            assertThat(unexpected.get()).isNull();
            assertThat(scheduler.isDisposed()).isTrue();
        }
        assertThat(Thread.getAllStackTraces().keySet()).noneMatch(
                t -> t.getName().startsWith("shimmer-test-io-") && t.isAlive());
    }

    @Test
    void aCallAfterCloseIsRefused() {
        IoScheduler io = new IoScheduler("shimmer-test-io-after-", THREADS, 100, 60);
        assertThat(io.close(Duration.ofSeconds(5))).isTrue();
        Scheduler scheduler = io.scheduler();
        assertThatThrownBy(() -> scheduler.schedule(() -> { })).isInstanceOf(RejectedExecutionException.class);
        assertThatThrownBy(scheduler::createWorker).isInstanceOf(RejectedExecutionException.class);
        assertThatThrownBy(() -> Mono.fromCallable(() -> 1).subscribeOn(scheduler).block())
                .isInstanceOf(RejectedExecutionException.class);
    }

    /**
     * A host may stop the plugin from a callback of the plugin's own work, on one of the io threads: close then
     * waited for that thread's executor, which cannot end while the task running close does, for the whole
     * timeout (10 s and a warning in a plugin stop).
     */
    @Test
    void aCloseRunOnOneOfItsOwnThreadsWaitsForEveryThreadButThatOne() throws Exception {
        IoScheduler io = new IoScheduler("shimmer-test-io-self-", THREADS, 100, 60);
        Scheduler scheduler = io.scheduler();
        madeEveryThread(scheduler);
        AtomicReference<Thread> closer = new AtomicReference<>();
        AtomicBoolean interruptedAfter = new AtomicBoolean(true);
        Boolean ended = Mono.fromCallable(() -> {
            closer.set(Thread.currentThread());
            boolean closed = io.close(Duration.ofSeconds(10));
            interruptedAfter.set(Thread.currentThread().isInterrupted());
            return closed;
        }).subscribeOn(scheduler).block(Duration.ofSeconds(60));
        assertThat(ended).as("close run on an io thread saw every other thread end in time").isTrue();
        assertThat(interruptedAfter).as("the caller's thread interrupted by the close").isFalse();
        closer.get().join(Duration.ofSeconds(10));
        assertThat(Thread.getAllStackTraces().keySet()).noneMatch(
                t -> t.getName().startsWith("shimmer-test-io-self-") && t.isAlive());
    }

    /** Has the scheduler make all its threads, each busy at once, so later picks go to a busy one. */
    private static void madeEveryThread(Scheduler scheduler) throws InterruptedException {
        CountDownLatch allRunning = new CountDownLatch(THREADS);
        CountDownLatch release = new CountDownLatch(1);
        for (int i = 0; i < THREADS; i++) {
            scheduler.schedule(() -> {
                allRunning.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
        }
        assertThat(allRunning.await(10, TimeUnit.SECONDS)).isTrue();
        release.countDown();
    }
}
