package org.shimmer.runtime.linux.testing;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.time.Duration;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.reactivestreams.Publisher;
import reactor.core.Disposable;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Sinks;

/**
 * Both ends of a process's terminal as a test sees them: what is typed ({@link #keys()}, fed to
 * {@code Stdio.terminal}) and everything the terminal printed, waited on as it arrives (no polling).
 */
public final class TerminalScreen implements AutoCloseable {

    private final Sinks.Many<byte[]> keys = Sinks.many().unicast().onBackpressureBuffer();
    private final StringBuilder printed = new StringBuilder();
    private Disposable reading;
    private boolean ended;
    private Throwable failed;
    private int consumed;

    /** What the test types, as the terminal's stdin. */
    public Publisher<byte[]> keys() {
        return keys.asFlux();
    }

    /** Starts reading the terminal's output. */
    public TerminalScreen read(Flux<byte[]> output) {
        reading = output.subscribe(chunk -> {
            synchronized (this) {
                printed.append(new String(chunk, UTF_8));
                notifyAll();
            }
        }, error -> {
            synchronized (this) {
                failed = error;
                ended = true;
                notifyAll();
            }
        }, () -> {
            synchronized (this) {
                ended = true;
                notifyAll();
            }
        });
        return this;
    }

    /** Types {@code text} (a string may hold control characters: {@code "\u0003"} is Ctrl-C). */
    public void type(String text) {
        Sinks.EmitResult result = keys.tryEmitNext(text.getBytes(UTF_8));
        if (result.isFailure()) {
            throw new IllegalStateException("could not type " + text + ": " + result);
        }
    }

    /** Ends what is typed: nothing more comes (no end-of-file is typed). */
    public void stopTyping() {
        keys.tryEmitComplete();
    }

    /**
     * Waits for {@code regex} in what was printed since the last match, and returns its first group (or the whole
     * match); later waits look only after it.
     */
    public synchronized String await(String regex, Duration timeout) throws InterruptedException, TimeoutException {
        Pattern pattern = Pattern.compile(regex);
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            Matcher matcher = pattern.matcher(printed);
            if (matcher.find(consumed)) {
                consumed = matcher.end();
                return matcher.groupCount() > 0 ? matcher.group(1) : matcher.group();
            }
            long left = deadline - System.nanoTime();
            if (ended || left <= 0) {
                throw new TimeoutException("no " + regex + " in the terminal's output" + (ended ? " (ended"
                        + (failed != null ? " with " + failed : "") + ")" : "") + ": " + printed.substring(consumed));
            }
            wait(Math.max(1, left / 1_000_000));
        }
    }

    /** Waits until the output ended; returns the error it ended with, or null. */
    public synchronized Throwable awaitEnd(Duration timeout) throws InterruptedException, TimeoutException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!ended) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new TimeoutException("the terminal's output did not end: " + printed);
            }
            wait(Math.max(1, left / 1_000_000));
        }
        return failed;
    }

    /** Everything printed so far. */
    public synchronized String printed() {
        return printed.toString();
    }

    @Override
    public void close() {
        keys.tryEmitComplete();
        if (reading != null) {
            reading.dispose();
        }
    }
}
