package org.shimmer.runtime.linux.shim;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
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

    private Operations() {}

    /** {@code work}, run to its end whatever the subscriber does. */
    public static <T> Mono<T> runToEnd(Mono<T> work) {
        return runToEnd(work, result -> Mono.empty());
    }

    /** {@code work}, run to its end whatever the subscriber does; a result nobody took goes to {@code abandoned}. */
    public static <T> Mono<T> runToEnd(Mono<T> work, Function<T, Mono<?>> abandoned) {
        return Mono.defer(() -> {
            CompletableFuture<T> running = work.toFuture();
            AtomicBoolean taken = new AtomicBoolean();
            AtomicBoolean cancelled = new AtomicBoolean();
            return Mono.fromFuture(running, true)
                    .doOnNext(result -> taken.set(!cancelled.get()))
                    .doOnCancel(() -> {
                        cancelled.set(true);
                        running.whenComplete((result, error) -> {
                            if (result != null && !taken.get()) {
                                abandoned.apply(result).subscribe(done -> {}, failure ->
                                        log.warn("could not undo an abandoned operation", failure));
                            }
                        });
                    });
        });
    }
}
