package org.shimmer.runtime.linux.shim;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import reactor.core.Disposable;
import reactor.core.publisher.Hooks;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import reactor.test.StepVerifier;

/** Pure logic of how a cancelled operation ends: no runc here, the shim tests show it against real ones. */
class OperationsTest {

    private final List<Throwable> dropped = new CopyOnWriteArrayList<>();

    @BeforeEach
    void collectDroppedErrors() {
        Hooks.onErrorDropped(dropped::add);
    }

    @AfterEach
    void restoreHooks() {
        Hooks.resetOnErrorDropped();
    }

    @Test
    void workThatFailsAfterItsCallerLeftReportsNothingAsDropped() {
        Sinks.One<String> work = Sinks.one();
        Disposable caller = Operations.runToEnd(work.asMono()).subscribe(value -> {}, error -> {});
        caller.dispose();
        work.tryEmitError(new IOException("runc exited 1 as the container went away"));

        // Reactor's default for a dropped error logs it at ERROR with its stack: one per exec a host cancelled.
        assertThat(dropped).isEmpty();
    }

    @Test
    void awaitingAFutureThatFailsAfterTheCancelReportsNothingAsDropped() {
        CompletableFuture<Integer> running = new CompletableFuture<>();
        Disposable caller = Operations.awaiting(running).subscribe(value -> {}, error -> {});
        caller.dispose();
        running.completeExceptionally(new IllegalStateException("ended after the cancel"));

        assertThat(dropped).isEmpty();
        assertThat(running).isCompletedExceptionally();
    }

    @Test
    void aCallerStillWaitingGetsTheWorksOwnErrorNotAWrapper() {
        IOException cause = new IOException("no such container");

        StepVerifier.create(Operations.runToEnd(Mono.error(cause)))
                .expectErrorSatisfies(error -> assertThat(error).isSameAs(cause))
                .verify(Duration.ofSeconds(5));
        CompletableFuture<String> dependent = CompletableFuture.<String>failedFuture(cause).thenApply(value -> value);
        StepVerifier.create(Operations.awaiting(dependent))
                .expectErrorSatisfies(error -> assertThat(error).isSameAs(cause))
                .verify(Duration.ofSeconds(5));
    }

    @Test
    void valuesAndEmptinessPassThrough() {
        StepVerifier.create(Operations.runToEnd(Mono.just("task"))).expectNext("task").verifyComplete();
        StepVerifier.create(Operations.runToEnd(Mono.<String>empty())).verifyComplete();
    }

    @Test
    void aResultNobodyTookIsHandedToAbandonedOnce() {
        Sinks.One<String> work = Sinks.one();
        AtomicInteger undone = new AtomicInteger();
        Disposable caller = Operations.runToEnd(work.asMono(), result -> Mono.fromRunnable(undone::incrementAndGet))
                .subscribe(value -> {}, error -> {});
        caller.dispose();
        work.tryEmitValue("created");

        assertThat(undone).hasValue(1);
        assertThat(work.asMono().block(Duration.ofSeconds(1))).isEqualTo("created");
    }
}
