package org.shimmer.runtime.linux.resources;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.channel.EventLoopGroup;
import io.netty.util.concurrent.EventExecutor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/** The end of a runtime's resources, as a host that stops the plugin sees it. */
class RuntimeResourcesTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(10);

    /**
     * Once close() returned, every thread the resources ran work on has ended, not only stopped taking work: an
     * executor counts as terminated while its last thread is still on its way out, and a plugin-stop test that
     * listed the runtime's threads just after a reload found one of them (LocalShimTest, a run under load).
     */
    @Test
    void closeReturnsOnlyOnceEveryThreadItStartedHasEnded() throws Exception {
        for (int round = 0; round < 100; round++) {
            RuntimeResources resources = new RuntimeResources("close-test-" + round + "-");
            List<Thread> used = new ArrayList<>(Flux.range(0, 8)
                    .flatMap(i -> Mono.fromCallable(Thread::currentThread).subscribeOn(resources.io()), 8)
                    .collectList().block(TIMEOUT));
            used.add(Mono.fromCallable(Thread::currentThread).subscribeOn(resources.output()).block(TIMEOUT));
            EventLoopGroup loops = resources.loops().onClient(true);
            for (EventExecutor loop : loops) {
                used.add(loop.submit(Thread::currentThread).get());
            }

            resources.close();

            assertThat(used.stream().distinct().filter(Thread::isAlive).map(Thread::getName))
                    .as("threads alive once close() returned, round %d", round).isEmpty();
        }
    }

    /**
     * A tracked subscription whose dispose throws (Reactor's composite disposes the others, then rethrows) used to
     * end close() there: the poll thread, the loops and both schedulers outlived the stop.
     */
    @Test
    void aTrackedSubscriptionThatFailsToEndStopsNothingElseEnding() throws Exception {
        RuntimeResources resources = new RuntimeResources("close-failing-test-");
        List<Thread> used = new ArrayList<>();
        used.add(Mono.fromCallable(Thread::currentThread).subscribeOn(resources.io()).block(TIMEOUT));
        used.add(Mono.fromCallable(Thread::currentThread).subscribeOn(resources.output()).block(TIMEOUT));
        used.add(resources.loops().onClient(true).next().submit(Thread::currentThread).get());
        resources.pollLoop();
        resources.track(() -> {
            throw new IllegalStateException("a subscription that fails to end");
        });

        resources.close();

        assertThat(used.stream().filter(Thread::isAlive).map(Thread::getName)).as("threads alive").isEmpty();
        assertThat(Thread.getAllStackTraces().keySet()).as("the poll thread")
                .noneMatch(thread -> thread.getName().startsWith("close-failing-test-") && thread.isAlive());
    }
    /**
     * What {@link RuntimeResources#cutByStop} is given runs once close stopped the io scheduler taking work and
     * before it waits for the running tasks, so an io task blocked until its cut (a runc create and its hook) does
     * not hold the stop; one withdrawn first never runs, one given after the cut ran runs at once, and the work the
     * cut task asks of the io scheduler then (an undo) is refused.
     */
    @Test
    void cutsRunWhenCloseStopsTakingWorkAndBeforeItWaitsForTheRunningTasks() throws Exception {
        RuntimeResources resources = new RuntimeResources("cut-test-");
        CountDownLatch cut = new CountDownLatch(1);
        CountDownLatch blocked = new CountDownLatch(1);
        List<String> ran = new CopyOnWriteArrayList<>();
        CompletableFuture<String> undo = new CompletableFuture<>();
        resources.io().schedule(() -> {
            blocked.countDown();
            try {
                // Never ends on its own within the test: only the cut ends it (a 10 s wait would be the close's).
                ran.add(cut.await(1, TimeUnit.HOURS) ? "task cut" : "task timed out");
                resources.io().schedule(() -> { });
                undo.complete("undo taken");
            } catch (RejectedExecutionException refused) {
                undo.complete("undo refused");
            } catch (InterruptedException interrupted) {
                ran.add("task interrupted");
            }
        });
        assertThat(blocked.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        resources.cutByStop(() -> ran.add("withdrawn")).dispose();
        resources.cutByStop(() -> {
            ran.add("cut");
            cut.countDown();
        });

        resources.close();

        assertThat(ran).containsExactly("cut", "task cut");
        assertThat(undo.getNow("no undo")).isEqualTo("undo refused");
        resources.cutByStop(() -> ran.add("given after the close"));
        assertThat(ran).endsWith("given after the close");
    }
}
