package org.shimmer.runtime.linux.resources;

import java.util.concurrent.Callable;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;

/**
 * Blocking work on the io scheduler. Subscribed from one of that scheduler's own threads (a step that follows
 * another blocking step), it runs right there: handing it to another io thread cost a thread wake-up, 0.1 to 0.2 ms
 * on a two-core VM, several times per container lifecycle (issue 14). From any other thread it is handed over, as
 * that thread may be an event loop.
 */
public final class Blocking {

    private Blocking() {}

    /** {@code work} on {@code io}: in place when subscribed on one of its threads, else on one of them. */
    public static <T> Mono<T> on(Scheduler io, Callable<T> work) {
        return Mono.defer(() -> IoScheduler.isWorkerOf(io) ? Mono.fromCallable(work)
                : Mono.fromCallable(work).subscribeOn(io));
    }

    /** Whether the calling thread is one of {@code io}'s: blocking work may run on it in place. */
    public static boolean inPlace(Scheduler io) {
        return IoScheduler.isWorkerOf(io);
    }
}
