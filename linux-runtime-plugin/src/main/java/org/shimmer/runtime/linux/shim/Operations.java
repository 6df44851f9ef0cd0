package org.shimmer.runtime.linux.shim;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Mono;

/**
 * How both shims treat a cancelled operation that changes a task (create, start, exec, delete, pause, resume).
 *
 * <p>Once begun, the work runs to its end on its own; cancelling only stops the caller from waiting. A result
 * nobody took is handed to {@code abandoned} (a create or exec nobody will use is undone). Issue 10: a cancel
 * arriving between two steps left whatever the first step made (a runc container, mounts, FIFOs, a launch in
 * flight that stopped orphan reaping for good), because each step released only on its own error path; and a step
 * cannot be undone while it still runs (a mount finishing after its unmount).
 */
public final class Operations {

    private static final Logger log = LoggerFactory.getLogger(Operations.class);
    private static final int PENDING = 0;
    private static final int TAKEN = 1;
    private static final int ABANDONED = 2;

    private Operations() {}

    /** {@code work}, run to its end whatever the subscriber does. */
    public static <T> Mono<T> runToEnd(Mono<T> work) {
        return runToEnd(work, result -> Mono.empty());
    }

    /** {@code work}, run to its end whatever the subscriber does; a result nobody took goes to {@code abandoned}. */
    public static <T> Mono<T> runToEnd(Mono<T> work, Function<T, Mono<?>> abandoned) {
        return Mono.defer(() -> {
            CompletableFuture<T> running = work.toFuture();
            // Taken or abandoned, decided once: a result handed on is never undone, an undone one never handed on.
            AtomicInteger fate = new AtomicInteger(PENDING);
            return awaiting(running)
                    .filter(result -> fate.compareAndSet(PENDING, TAKEN))
                    .doOnCancel(() -> running.whenComplete((result, error) -> {
                        if (result != null && fate.compareAndSet(PENDING, ABANDONED)) {
                            abandoned.apply(result).subscribe(done -> {}, failure ->
                                    log.warn("could not undo an abandoned operation", failure));
                        } else if (error != null) {
                            log.debug("an operation nobody waits for any more failed", error);
                        }
                    }));
        });
    }

    /**
     * What {@code running} ends with, for a subscriber that may leave first; the future is not cancelled with it.
     * {@code Mono.fromFuture} hands an error that comes after a cancel to {@code onErrorDropped}, whose default logs
     * it at ERROR with its stack: a host that cancelled execs racing a release got one such report per exec, for
     * work that ended the way a cancel allows. Here the future never fails, so nothing comes after a cancel.
     */
    public static <T> Mono<T> awaiting(CompletableFuture<T> running) {
        return Mono.fromFuture(running.handle(Outcome::new), true).flatMap(Outcome::signal);
    }

    private record Outcome<T>(T value, Throwable error) {

        Mono<T> signal() {
            if (error == null) {
                return Mono.justOrEmpty(value);
            }
            return Mono.error(error instanceof CompletionException wrapped && wrapped.getCause() != null
                    ? wrapped.getCause() : error);
        }
    }
}
