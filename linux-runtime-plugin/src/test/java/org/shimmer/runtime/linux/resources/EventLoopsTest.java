package org.shimmer.runtime.linux.resources;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.channel.EventLoopGroup;
import io.netty.util.concurrent.EventExecutor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

class EventLoopsTest {

    /**
     * A host may stop the plugin from a callback on one of the runtime's event loops (a ttRPC answer it reacts to):
     * close blocked there, which Reactor refuses on a loop's thread, and reported the loops as not stopped.
     */
    @Test
    void aCloseRunOnOneOfItsOwnLoopsStopsThemAllAndWaitsForTheOthers() throws Exception {
        EventLoops loops = new EventLoops("shimmer-test-loops-self-", 2);
        EventLoopGroup group = loops.onClient(false);
        List<Thread> threads = new ArrayList<>();
        for (EventExecutor loop : group) {
            threads.add(loop.submit(Thread::currentThread).get(10, TimeUnit.SECONDS));
        }
        EventExecutor closer = group.next();
        Thread closerThread = closer.submit(Thread::currentThread).get(10, TimeUnit.SECONDS);

        boolean ended = closer.submit(() -> loops.close(Duration.ofSeconds(10))).get(60, TimeUnit.SECONDS);

        assertThat(ended).as("close run on a loop saw the other loops end in time").isTrue();
        threads.stream().filter(thread -> thread != closerThread)
                .forEach(thread -> assertThat(thread.isAlive()).as("%s alive", thread.getName()).isFalse());
        closerThread.join(Duration.ofSeconds(10));
        assertThat(closerThread.isAlive()).as("the closing loop's own thread ended after its task").isFalse();
        assertThat(loops.isDisposed()).isTrue();
    }

    /**
     * A loop asked for once close began (a first bind of a server racing a plugin stop) is refused: close had
     * already learned the threads it waits for, so a loop handed out then ran on after the stop (a reload test found
     * a {@code ttrpc-select} thread alive).
     */
    @Test
    void aLoopAskedForOnceCloseBeganIsRefusedAndNoThreadOutlivesTheClose() throws Exception {
        String prefix = "shimmer-test-loops-late-";
        EventLoops loops = new EventLoops(prefix, 2);
        loops.onClient(false).next().submit(() -> { }).get(10, TimeUnit.SECONDS);
        assertThat(loops.close(Duration.ofSeconds(10))).isTrue();

        for (Supplier<EventLoopGroup> late : List.<Supplier<EventLoopGroup>>of(() -> loops.onServerSelect(false),
                () -> loops.onServer(false), () -> loops.onClient(false))) {
            assertThatThrownBy(() -> late.get().next().submit(() -> { }).get(10, TimeUnit.SECONDS))
                    .isInstanceOf(RejectedExecutionException.class).hasMessageContaining("the runtime stopped");
        }
        assertThat(Thread.getAllStackTraces().keySet()).filteredOn(thread -> thread.getName().startsWith(prefix))
                .filteredOn(Thread::isAlive).isEmpty();
    }
}
