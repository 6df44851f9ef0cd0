package org.shimmer.runtime.linux.resources;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;
import reactor.test.StepVerifier;

/**
 * Issue 14: blocking work that follows blocking work stays on the io thread it is on, instead of waking another;
 * from any other thread (the caller's, perhaps an event loop; another runtime's io thread) it is handed to io.
 */
class BlockingTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(10);

    @Test
    void blockingWorkRunsInPlaceOnlyOnAThreadOfItsOwnScheduler() {
        IoScheduler first = new IoScheduler("blocking-test-a", 4, 100, 30);
        IoScheduler second = new IoScheduler("blocking-test-b", 4, 100, 30);
        Scheduler io = first.scheduler();
        try {
            // From the test's thread: handed over.
            Thread caller = Thread.currentThread();
            StepVerifier.create(Blocking.on(io, Thread::currentThread))
                    .assertNext(thread -> assertThat(thread).isNotSameAs(caller)
                            .satisfies(t -> assertThat(t.getName()).startsWith("blocking-test-a-")))
                    .expectComplete()
                    .verify(TIMEOUT);
            assertThat(Blocking.inPlace(io)).isFalse();

            // From one of its threads: right there, the same thread.
            StepVerifier.create(Mono.fromCallable(Thread::currentThread).subscribeOn(io)
                            .flatMap(outer -> Blocking.on(io, () -> Blocking.inPlace(io)
                                    && Thread.currentThread() == outer)))
                    .expectNext(true)
                    .expectComplete()
                    .verify(TIMEOUT);

            // From another runtime's io thread, or a Reactor thread that may not block: handed over.
            for (Scheduler elsewhere : new Scheduler[] {second.scheduler(), Schedulers.parallel()}) {
                StepVerifier.create(Mono.fromCallable(Thread::currentThread).subscribeOn(elsewhere)
                                .flatMap(outer -> Blocking.on(io, Thread::currentThread).map(inner -> inner != outer
                                        && inner.getName().startsWith("blocking-test-a-"))))
                        .expectNext(true)
                        .expectComplete()
                        .verify(TIMEOUT);
            }
        } finally {
            assertThat(first.close(TIMEOUT)).isTrue();
            assertThat(second.close(TIMEOUT)).isTrue();
        }
        // Its threads are daemons that end with the scheduler: none is left.
        assertThat(Thread.getAllStackTraces().keySet())
                .noneMatch(thread -> thread.getName().startsWith("blocking-test-"));
    }
}
