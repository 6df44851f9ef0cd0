package org.shimmer.runtime.linux.shim.local;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;
import org.shimmer.runtime.linux.shim.ProcessStdio;
import org.shimmer.runtime.shim.ExitStatus;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;

/**
 * One process of a local container, init or exec: its stdio, its pid once it runs, and its exit.
 *
 * <p>Invariant: the exit is published only after the start was (containerd #8617, #10651: an exit reaped before
 * start returned overtook the start event): whoever publishes the start subscribes to the exit afterwards.
 */
final class LocalProcess {

    final String execId;
    final ProcessStdio stdio;
    final Sinks.One<ExitStatus> exit = Sinks.one();
    final AtomicBoolean startRequested = new AtomicBoolean();
    volatile int pid;
    volatile boolean running;
    volatile ExitStatus exited;

    LocalProcess(String execId, ProcessStdio stdio) {
        this.execId = execId;
        this.stdio = stdio;
    }

    /** Completes with the exit, once the process has one. */
    Mono<ExitStatus> awaitExit() {
        return exit.asMono();
    }

    /** Records the exit the monitor saw. */
    void exited(ExitStatus status) {
        exited = status;
        exit.tryEmitValue(status);
    }

    /** Nobody watches the process any more (the runtime stopped): whoever awaits its exit gets {@code why}. */
    void unwatched(Throwable why) {
        exit.tryEmitError(why);
    }

    boolean hasExited() {
        return exited != null;
    }

    /** Completes when the output someone subscribed to has ended (at most {@code timeout}); keeps the FIFOs. */
    Mono<Void> outputEnded(Duration timeout) {
        return stdio == null ? Mono.empty() : stdio.outputEnded(timeout);
    }

    /** Like {@link #outputEnded}, then releases the FIFOs. */
    Mono<Void> drained(Duration timeout) {
        return stdio == null ? Mono.empty() : stdio.drained(timeout);
    }
}
