package org.shimmer.examples.cli.tty;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Raw mode on a terminal for as long as the CLI types into a container's: every key, Ctrl-C and Ctrl-D included,
 * goes to the container unseen by our line discipline. The attributes found on entry are put back exactly once:
 * on {@link #close()} (a normal return or an exception), or by a shutdown hook when the JVM ends another way
 * (a signal we do not handle, {@code System.exit} elsewhere): a CLI that leaves the user's shell raw makes it
 * unusable ({@code reset} needed), the worst paper cut a terminal mode can have. SIGKILL is the one path that
 * cannot restore.
 */
public final class RawMode implements AutoCloseable {

    private final int fd;
    private final byte[] saved;
    private final AtomicBoolean restored = new AtomicBoolean();
    private final Thread hook;

    private RawMode(int fd, byte[] saved) {
        this.fd = fd;
        this.saved = saved;
        this.hook = new Thread(this::restore, "shimmer-restore-terminal");
    }

    /**
     * Puts terminal {@code fd} in raw mode ({@code cfmakeraw}); returns a mode that changes nothing when {@code fd}
     * is not a terminal (input from a pipe or file is already raw).
     */
    public static RawMode enter(int fd) {
        if (!Termios.isatty(fd)) {
            return none();
        }
        try {
            byte[] saved = Termios.get(fd);
            RawMode mode = new RawMode(fd, saved);
            // The hook first: a signal between the two calls must still find the way back.
            Runtime.getRuntime().addShutdownHook(mode.hook);
            Termios.set(fd, Termios.raw(saved));
            return mode;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot put terminal fd " + fd + " in raw mode", e);
        }
    }

    /** A mode that changes nothing: for a session whose stdin is not forwarded, our terminal stays cooked. */
    public static RawMode none() {
        return new RawMode(-1, null);
    }

    /** Whether this mode changed the terminal (it is one). */
    public boolean active() {
        return saved != null;
    }

    /** Puts the saved attributes back, once; later calls do nothing. */
    @Override
    public void close() {
        if (saved == null) {
            return;
        }
        restore();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // The hook runs (or ran) anyway, and finds the terminal restored.
        }
    }

    private void restore() {
        if (saved == null || !restored.compareAndSet(false, true)) {
            return;
        }
        try {
            Termios.set(fd, saved);
        } catch (IOException e) {
            // The terminal went away (hang-up): there is nothing left to restore.
        }
    }
}
