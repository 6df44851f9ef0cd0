package org.shimmer.examples.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.Stdio;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import reactor.core.scheduler.Schedulers;

/**
 * A process in this CLI's foreground ({@code run} without {@code -d}, {@code exec}): our stdin forwarded to it with
 * {@code -i} (and never read without), its output copied to ours, stop signals passed on once it started (see
 * {@link StopSignals}), and its exit status returned once its output reached its end. This is the one place a
 * process's io meets ours: the terminal mode ({@code -t}) goes here.
 */
class Foreground implements AutoCloseable {

    /** How long the output of an exited process may take to reach its end before it is cut. */
    private static final Duration DRAIN_TIMEOUT = Duration.ofSeconds(5);
    private static final int STDIN_CHUNK = 8192;

    private final CliContext context;
    private final boolean interactive;
    /** Set when a write to our stdout failed: it was closed under us. */
    private final AtomicBoolean stdoutClosed = new AtomicBoolean();

    Foreground(CliContext context, boolean interactive) {
        this.context = context;
        this.interactive = interactive;
    }

    /** What the process is created with: streams, stdin ours with {@code -i}. */
    Stdio stdio() {
        return Stdio.streams(stdin());
    }

    /** Our stdin with {@code -i}, else none: without it, nothing is read from ours (docker's rule). */
    Flux<byte[]> stdin() {
        return interactive ? read(context.in) : null;
    }

    /**
     * {@code in}, chunk by chunk as it comes, until its end. Read on a thread of its own: a read blocks until input
     * comes, and a process that exits first leaves it blocked, which only delays nothing (the JVM exits).
     */
    static Flux<byte[]> read(InputStream in) {
        return Flux.<byte[]>generate(sink -> {
            byte[] chunk = new byte[STDIN_CHUNK];
            try {
                int read = in.read(chunk);
                if (read < 0) {
                    sink.complete();
                } else {
                    sink.next(Arrays.copyOf(chunk, read));
                }
            } catch (IOException e) {
                sink.error(new UncheckedIOException("reading stdin failed", e));
            }
        }).subscribeOn(Schedulers.boundedElastic());
    }

    /** Starts {@code execId} ({@code ""}: the init process) of {@code shim}, whose io is {@code io}, and follows it. */
    int attach(ShimClient shim, ProcessIo io, String execId, StopSignals signals) {
        Sinks.One<Instant> exited = Sinks.one();
        CompletableFuture<Void> drained = output(io.stdout(), io.stderr(), exited.asMono(), shim.id(),
                signals).toFuture();
        try {
            shim.start(execId).block(CliContext.TIMEOUT);
            signals.target(signal -> (execId.isEmpty() ? shim.kill(signal, signal == 9) : shim.kill(execId, signal))
                    .subscribe(done -> {}, e -> {}));
            ExitStatus exit = shim.awaitExit(execId).block();
            exited.tryEmitValue(Objects.requireNonNullElseGet(exit.exitedAt(), Instant::now));
            drained.join();
            return stdoutClosed.get() ? ExitCodes.BROKEN_PIPE : exit.status();
        } finally {
            // Only on a failure before the exit: after it, the output has ended and this changes nothing.
            drained.cancel(false);
        }
    }

    /** {@link #attach(ShimClient, ProcessIo, String, StopSignals)} for a container that already started. */
    int attach(Container container, StopSignals signals) {
        Sinks.One<Instant> exited = Sinks.one();
        CompletableFuture<Void> drained = output(container.stdout(), container.stderr(), exited.asMono(),
                container.id(), signals).toFuture();
        try {
            signals.target(signal -> container.shim().kill(signal, signal == 9).subscribe(done -> {}, e -> {}));
            ExitStatus exit = container.exit().block();
            exited.tryEmitValue(Objects.requireNonNullElseGet(exit.exitedAt(), Instant::now));
            drained.join();
            return stdoutClosed.get() ? ExitCodes.BROKEN_PIPE : exit.status();
        } finally {
            drained.cancel(false);
        }
    }

    /**
     * Copies stdout and stderr to ours until both end. The tail of the output may still be on its way when the
     * exit is known (the remote shim answers Wait before it copied the last bytes), so nothing is cut at the exit:
     * only once nothing was written for {@link #DRAIN_TIMEOUT} after it (a background process may hold the pipes
     * open) does the copy stop, and says so. The silence counts from the exit ({@code exited} gives its time) or the
     * last write, whichever came later: the exit is learnt only once the runtime's own wait for the output was cut
     * (5 s after the exit), and a silence counted from then doubled the wait (an exec whose background child kept
     * its output open returned 10 s after its exit). Written off the runtime's poll thread: a slow terminal must not
     * stall it.
     */
    private Mono<Void> output(Flux<byte[]> stdout, Flux<byte[]> stderr, Mono<Instant> exited, String id,
            StopSignals signals) {
        PrintStream err = context.err;
        AtomicLong lastWrite = new AtomicLong(System.nanoTime());
        Mono<Long> silentAfterExit = exited.flatMap(exitedAt -> Mono.delay(silenceLeft(exitedAt, lastWrite.get())));
        Flux<Runnable> writes = Flux.merge(
                stdout.<Runnable>map(bytes -> () -> writeOut(bytes, signals)),
                stderr.<Runnable>map(bytes -> () -> write(err, bytes)));
        // The silence is timed after our writes: a chunk queued for a slow terminal is not silence.
        return writes.publishOn(Schedulers.boundedElastic())
                .doOnNext(write -> {
                    write.run();
                    lastWrite.set(System.nanoTime());
                })
                .timeout(silentAfterExit, written -> silentAfterExit)
                .then()
                .onErrorResume(TimeoutException.class, silent -> {
                    err.println("shimmer: the output of " + id + " was still open " + DRAIN_TIMEOUT.toSeconds()
                            + " s after its exit with nothing written; stopped reading it");
                    return Mono.empty();
                })
                .onErrorResume(failed -> {
                    err.println("shimmer: reading the output of " + id + " failed: " + failed.getMessage());
                    return Mono.empty();
                });
    }

    /**
     * What is left of the {@link #DRAIN_TIMEOUT} of silence after an exit at {@code exitedAt}, with the last write
     * at {@code lastWrite} ({@link System#nanoTime}).
     */
    private static Duration silenceLeft(Instant exitedAt, long lastWrite) {
        Duration sinceExit = Duration.between(exitedAt, Instant.now());
        Duration sinceWrite = Duration.ofNanos(System.nanoTime() - lastWrite);
        Duration silent = sinceExit.compareTo(sinceWrite) < 0 ? sinceExit : sinceWrite;
        if (silent.isNegative()) {
            return DRAIN_TIMEOUT;
        }
        Duration left = DRAIN_TIMEOUT.minus(silent);
        return left.isNegative() ? Duration.ZERO : left;
    }

    /**
     * Writes to our stdout until it is closed under us ({@code | head -1}): the JVM ignores SIGPIPE and PrintStream
     * swallows the error, so the failure is checked after each write. Then the process is stopped as a SIGTERM
     * would stop it, the rest of its output is read and dropped, and the exit status is a SIGPIPE's (141).
     */
    private void writeOut(byte[] bytes, StopSignals signals) {
        if (stdoutClosed.get()) {
            return;
        }
        write(context.out, bytes);
        if (context.out.checkError() && stdoutClosed.compareAndSet(false, true)) {
            signals.stdoutClosed();
        }
    }

    private static void write(PrintStream to, byte[] bytes) {
        to.write(bytes, 0, bytes.length);
        to.flush();
    }

    /** How a line of ours on stderr ends while this foreground is open. */
    String lineEnd() {
        return "\n";
    }

    /** Gives back what the foreground took of ours: nothing here; our terminal with {@code -t}. */
    @Override
    public void close() {}
}
