package org.shimmer.examples.cli;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * SIGINT, SIGTERM and SIGHUP while the CLI owns a container: the first asks the container to stop (SIGTERM), a
 * second one, or {@link #GRACE} without an exit, kills it (SIGKILL). The CLI itself never dies of them, so it always
 * gets to clean up (issue 9: a terminal closed under {@code run --rm} left the container running and mounted).
 * Signals that come before the container can be signalled are remembered and passed on once it can.
 */
final class StopSignals implements AutoCloseable {

    /** How long a container may take to stop after SIGTERM before it gets SIGKILL. */
    static final Duration GRACE = Duration.ofSeconds(10);

    private static final List<String> NAMES = List.of("INT", "TERM", "HUP");
    private static final int SIGTERM = 15;
    private static final int SIGKILL = 9;

    private final AtomicInteger received = new AtomicInteger();
    private final Map<Signal, SignalHandler> previous = new LinkedHashMap<>();
    private volatile int first;
    private volatile IntConsumer target;
    private volatile Disposable escalation;

    private StopSignals() {}

    /** Takes over the three signals until {@link #close()}. */
    static StopSignals install() {
        StopSignals signals = new StopSignals();
        for (String name : NAMES) {
            Signal signal = new Signal(name);
            signals.previous.put(signal, Signal.handle(signal, signals::received));
        }
        return signals;
    }

    /**
     * Blocks until {@code work} ends, or until SIGINT, SIGTERM or SIGHUP (one that came since {@link #install()}
     * too) cancels it; returns the shell's status for that signal then. For the commands that wait for as long as
     * the user likes ({@code events}, {@code stats}, {@code wait}), installed for the whole command: killed by the
     * signal, their JVM never stopped the plugin, and the events socket they served (bound for the remote shims'
     * events) stayed behind, stale.
     */
    OptionalInt await(Mono<?> work) {
        CompletableFuture<?> running = work.toFuture();
        target(signal -> running.cancel(false));
        try {
            running.join();
            return OptionalInt.empty();
        } catch (CancellationException cancelled) {
            return OptionalInt.of(exitStatus());
        } catch (CompletionException failed) {
            throw failed.getCause() instanceof RuntimeException e ? e : failed;
        }
    }

    /** From now on signals go to {@code sendSignal}; one that already came is sent at once. */
    void target(IntConsumer sendSignal) {
        target = sendSignal;
        int count = received.get();
        if (count > 0) {
            forward(count);
        }
    }

    /**
     * Our stdout was closed under us ({@code | head -1}): the JVM ignores SIGPIPE, so this is our SIGPIPE. The
     * container is stopped as a first SIGTERM would stop it (unless a signal already did).
     */
    void stdoutClosed() {
        if (received.compareAndSet(0, 1)) {
            first = 13;
            forward(1);
        }
    }

    /** Whether a stop signal came. */
    boolean stopRequested() {
        return received.get() > 0;
    }

    /** The exit status a shell reports for the first signal: 128 + its number. */
    int exitStatus() {
        return 128 + first;
    }

    private void received(Signal signal) {
        if (received.get() == 0) {
            first = signal.getNumber();
        }
        forward(received.incrementAndGet());
    }

    private synchronized void forward(int count) {
        IntConsumer current = target;
        if (current == null) {
            return;
        }
        if (count == 1 && escalation == null) {
            current.accept(SIGTERM);
            escalation = Mono.delay(GRACE).subscribe(tick -> current.accept(SIGKILL));
        } else if (count > 1) {
            current.accept(SIGKILL);
        }
    }

    @Override
    public void close() {
        Disposable pending = escalation;
        if (pending != null) {
            pending.dispose();
        }
        previous.forEach(Signal::handle);
    }
}
