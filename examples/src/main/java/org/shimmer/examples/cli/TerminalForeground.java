package org.shimmer.examples.cli;

import java.time.Duration;
import org.shimmer.examples.cli.tty.TerminalSession;
import org.shimmer.examples.cli.tty.Termios;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TerminalSize;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * {@link Foreground} with {@code -t}: the process gets a pseudo-terminal ({@link Stdio#terminal}) sized as ours,
 * its one output stream is copied to our stdout, our window changes resize it, and with {@code -i} our stdin is
 * raw and typed into it (see {@link TerminalSession}). The session opens when the process's stdio is asked for,
 * just before it is created, and closes, restoring our terminal, with this foreground, whatever happened between.
 * Stop signals sent to us ({@code kill}, a hang-up) still stop the container as without {@code -t}; Ctrl-C typed
 * is no signal of ours in raw mode but a byte for the container's terminal.
 */
final class TerminalForeground extends Foreground {

    private static final Duration DRAIN_TIMEOUT = Duration.ofSeconds(5);

    private final CliContext context;
    private final boolean interactive;
    private TerminalSession session;

    TerminalForeground(CliContext context, boolean interactive) {
        super(context, interactive);
        this.context = context;
        this.interactive = interactive;
    }

    /** The size the process's terminal gets: our window's, or 80x24 without one. */
    TerminalSize size() {
        return session().size();
    }

    @Override
    Stdio stdio() {
        return Stdio.terminal(stdin(), size());
    }

    @Override
    Flux<byte[]> stdin() {
        return session().stdin();
    }

    @Override
    int attach(ShimClient shim, ProcessIo io, String execId, StopSignals signals) {
        Mono<Void> start = shim.start(execId).timeout(CliContext.TIMEOUT).then(Mono.fromRunnable(() ->
                signals.target(signal -> (execId.isEmpty() ? shim.kill(signal, signal == 9)
                        : shim.kill(execId, signal)).subscribe(done -> {}, e -> {}))));
        int status = session().attach(io.stdout(), start, shim.awaitExit(execId),
                size -> shim.resize(execId, size), DRAIN_TIMEOUT, shim.id(), signals::stdoutClosed);
        return session.stdoutClosed() ? ExitCodes.BROKEN_PIPE : status;
    }

    @Override
    int attach(Container container, StopSignals signals) {
        Mono<Void> start = Mono.fromRunnable(() -> signals.target(signal -> container.shim()
                .kill(signal, signal == 9).subscribe(done -> {}, e -> {})));
        int status = session().attach(container.stdout(), start, container.exit(), container::resize,
                DRAIN_TIMEOUT, container.id(), signals::stdoutClosed);
        return session.stdoutClosed() ? ExitCodes.BROKEN_PIPE : status;
    }

    /**
     * Refuses {@code -t -i} when our stdin is no terminal, as docker does: nobody could type the EOF that ends the
     * container's input (a pipe's end is no EOF for a terminal in canonical mode), so the run would never end.
     */
    static void requireTerminalInput(CliContext context, boolean interactive) {
        if (interactive && !(context.in == System.in && Termios.isatty(0))) {
            throw new CliException("the input device is not a TTY");
        }
    }

    /** In raw mode a newline does not return the carriage: a line of ours ends with both then. */
    @Override
    String lineEnd() {
        return session != null && session.raw() ? "\r\n" : "\n";
    }

    private TerminalSession session() {
        if (session == null) {
            session = TerminalSession.open(context.out, context.err, interactive ? read(context.in) : null);
        }
        return session;
    }

    /** Restores our terminal, if the session was opened. */
    @Override
    public void close() {
        if (session != null) {
            session.close();
        }
    }
}
