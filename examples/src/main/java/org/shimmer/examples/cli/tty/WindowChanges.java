package org.shimmer.examples.cli.tty;

import java.util.function.Consumer;
import org.shimmer.runtime.shim.TerminalSize;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * SIGWINCH on our terminal, passed on as its new size. The JDK has no public signal API; {@code sun.misc.Signal}
 * (jdk.unsupported, as {@code StopSignals} uses) runs the handler on a JVM thread of its own, so the callback may
 * do non-blocking work but never runs on a Reactor event loop. The alternative, polling {@code TIOCGWINSZ}, would
 * wake the CLI for nothing and still lag behind the user's drag.
 */
public final class WindowChanges implements AutoCloseable {

    private static final Signal SIGWINCH = new Signal("WINCH");

    private final SignalHandler previous;

    private WindowChanges(int fd, Consumer<TerminalSize> onChange) {
        this.previous = Signal.handle(SIGWINCH, signal -> Termios.windowSize(fd).ifPresent(onChange));
    }

    /** From now until {@link #close()}, each window change of terminal {@code fd} gives its size to {@code onChange}. */
    public static WindowChanges watch(int fd, Consumer<TerminalSize> onChange) {
        return new WindowChanges(fd, onChange);
    }

    @Override
    public void close() {
        Signal.handle(SIGWINCH, previous);
    }
}
