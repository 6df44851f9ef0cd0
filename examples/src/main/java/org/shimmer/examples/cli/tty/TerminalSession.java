package org.shimmer.examples.cli.tty;

import java.io.PrintStream;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.TerminalSize;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import reactor.core.scheduler.Schedulers;

/**
 * A process on a pseudo-terminal of its own, driven from ours as {@code docker run -t -i} does. With {@code -i} our
 * stdin is typed into the container's terminal as the shim asks for it, and, when stdin is a terminal, it is raw
 * ({@link RawMode}) so that Ctrl-C, Ctrl-Z and Ctrl-D are bytes for the container's line discipline, not signals
 * or end of input for us. The process's one output stream
 * is copied to our stdout unchanged (its terminal already did the line-ending mapping). Window changes of our
 * terminal resize the container's. {@link #close()} restores our terminal and stops watching the window; opened
 * before the process is created (the size and stdin go into its {@code Stdio.terminal}), closed after its exit.
 */
public final class TerminalSession implements AutoCloseable {

    private static final int STDIN = 0;
    private static final int STDOUT = 1;

    private final PrintStream out;
    private final PrintStream err;
    private final Flux<byte[]> input;
    private final int sizeFd;
    private final TerminalSize size;
    private final RawMode raw;
    private final AtomicReference<Function<TerminalSize, Mono<Void>>> resizer = new AtomicReference<>();
    private final WindowChanges windowChanges;
    /** Set when a write to our stdout failed: it was closed under us ({@code | head -1}). */
    private final AtomicBoolean stdoutClosed = new AtomicBoolean();

    private TerminalSession(PrintStream out, PrintStream err, Flux<byte[]> input) {
        this.out = out;
        this.err = err;
        this.input = input;
        // The window is the one our stdin types into; with stdin a pipe, the one we print on.
        this.sizeFd = Termios.isatty(STDIN) ? STDIN : STDOUT;
        this.size = Termios.windowSize(sizeFd).orElse(TerminalSize.DEFAULT);
        this.raw = input != null ? RawMode.enter(STDIN) : RawMode.none();
        // Watched before the process exists: a change before attach is sent once it can be (see attach).
        this.windowChanges = WindowChanges.watch(sizeFd, this::resize);
    }

    /**
     * Opens a session on this process's terminal: {@code input} ({@code -i}: what our stdin reads; {@code null}
     * without) is typed into the process's, and our stdin is made raw when it is a terminal. Without a terminal on
     * stdin the process still gets one, of {@link TerminalSize#DEFAULT} size unless stdout is a terminal, and a
     * line on stderr says so.
     */
    public static TerminalSession open(PrintStream out, PrintStream err, Flux<byte[]> input) {
        TerminalSession session = new TerminalSession(out, err, input);
        if (!Termios.isatty(STDIN)) {
            err.println("shimmer: stdin is not a terminal; the container's terminal is " + session.size.width()
                    + "x" + session.size.height() + (input != null ? " and gets our stdin as typed" : ""));
        }
        return session;
    }

    /** The size the process's terminal is created with: our window's, or 80x24 when we have none. */
    public TerminalSize size() {
        return size;
    }

    /** Whether our terminal is raw, so that a key typed is the container's. */
    public boolean raw() {
        return raw.active();
    }

    /** What is typed into the process's terminal: our stdin with {@code -i}, {@code null} (nothing) without. */
    public Flux<byte[]> stdin() {
        return input;
    }

    /**
     * Copies {@code output} to our stdout, runs {@code start}, sends window changes to {@code resize} until the
     * exit, and returns the exit status once the output ended. The output may end after the exit (the remote shim
     * answers Wait before it copied the tail); it is cut only after {@code drainTimeout} with nothing written
     * after the exit (a background process may hold the terminal open), and a line says so. When our stdout is
     * closed under us ({@code | head -1}: the JVM ignores SIGPIPE and PrintStream swallows the error, so only
     * {@link PrintStream#checkError()} tells), {@code stdoutClosed} runs once, to stop the process, and the rest
     * of its output is read and dropped (see {@link #stdoutClosed()}).
     */
    public int attach(Flux<byte[]> output, Mono<Void> start, Mono<ExitStatus> exit,
            Function<TerminalSize, Mono<Void>> resize, Duration drainTimeout, String name, Runnable stdoutClosed) {
        Sinks.Empty<Void> exited = Sinks.empty();
        CompletableFuture<Void> drained = copy(output, exited.asMono(), drainTimeout, name, stdoutClosed)
                .toFuture();
        try {
            start.block();
            resizer.set(resize);
            Termios.windowSize(sizeFd).filter(now -> !now.equals(size)).ifPresent(this::resize);
            ExitStatus status = exit.block();
            resizer.set(null);
            exited.tryEmitEmpty();
            drained.join();
            return status.status();
        } finally {
            resizer.set(null);
            drained.cancel(false);
        }
    }

    private void resize(TerminalSize now) {
        Function<TerminalSize, Mono<Void>> current = resizer.get();
        if (current != null) {
            // The process may exit meanwhile: a resize that finds it gone changes nothing anyone sees.
            current.apply(now).subscribe(done -> {}, gone -> {});
        }
    }

    /** Whether our stdout was found closed while the process's output was copied to it. */
    public boolean stdoutClosed() {
        return stdoutClosed.get();
    }

    private Mono<Void> copy(Flux<byte[]> output, Mono<Void> exited, Duration drainTimeout, String name,
            Runnable onStdoutClosed) {
        Mono<Long> silentAfterExit = exited.then(Mono.delay(drainTimeout));
        return output.publishOn(Schedulers.boundedElastic())
                .doOnNext(bytes -> {
                    if (stdoutClosed.get()) {
                        return;
                    }
                    out.write(bytes, 0, bytes.length);
                    out.flush();
                    if (out.checkError() && stdoutClosed.compareAndSet(false, true)) {
                        onStdoutClosed.run();
                    }
                })
                .timeout(silentAfterExit, written -> silentAfterExit)
                .then()
                .onErrorResume(TimeoutException.class, silent -> {
                    message("the terminal of " + name + " was still open " + drainTimeout.toSeconds()
                            + " s after its exit with nothing written; stopped reading it");
                    return Mono.empty();
                })
                .onErrorResume(failed -> {
                    message("reading the terminal of " + name + " failed: " + failed.getMessage());
                    return Mono.empty();
                });
    }

    /** A line of ours on stderr; in raw mode a newline does not return the carriage, so we do. */
    private void message(String line) {
        err.print("shimmer: " + line + (raw.active() ? "\r\n" : "\n"));
        err.flush();
    }

    /** Stops watching the window and restores our terminal. */
    @Override
    public void close() {
        windowChanges.close();
        raw.close();
    }
}
