package org.shimmer.runtime.shim;

import java.nio.file.Path;
import java.util.Objects;
import org.reactivestreams.Publisher;

/**
 * Where a process's standard streams go. Chosen per process (init or exec).
 */
public sealed interface Stdio {

    /** No streams: all three are {@code /dev/null}. */
    static Stdio none() {
        return None.INSTANCE;
    }

    /**
     * stdout and stderr appended to files, created if missing; the same path for both shares one file. No stdin.
     */
    static Stdio files(Path stdout, Path stderr) {
        return new Files(stdout, stderr);
    }

    /**
     * stdout and stderr as {@code Flux<byte[]>} on the {@link ProcessIo} that create or exec returns, and stdin fed
     * from {@code stdin} (or none when {@code null}). Output is read only as fast as it is consumed: a subscriber
     * that stops requesting eventually blocks the process's writes.
     */
    static Stdio streams(Publisher<byte[]> stdin) {
        return new Streams(stdin);
    }

    /**
     * A pseudo-terminal: the process's stdin, stdout and stderr are its slave side, and the shim holds the master.
     * What the process writes to either stream comes, in the order it was written, on {@link ProcessIo#stdout()}
     * (as on a terminal, they are one stream; {@link ProcessIo#stderr()} is empty), read only as fast as it is
     * consumed; {@code stdin} (or none when {@code null}) is typed into the terminal, so a {@code 0x03} byte is
     * Ctrl-C for the process's line discipline (SIGINT to its foreground group) and a {@code 0x04} at the start of
     * a line is end of input. When {@code stdin} completes, nothing more is typed: the terminal stays open as long
     * as the process holds it. The process's spec must ask for a terminal ({@code process.terminal}); the size is
     * set before the process starts, and changed later with {@link ShimClient#resize}.
     */
    static Stdio terminal(Publisher<byte[]> stdin, TerminalSize size) {
        return new Terminal(stdin, size);
    }

    /** See {@link #none()}. */
    enum None implements Stdio { INSTANCE }

    /** See {@link #files(Path, Path)}. */
    record Files(Path stdout, Path stderr) implements Stdio {
        public Files {
            Objects.requireNonNull(stdout, "stdout");
            Objects.requireNonNull(stderr, "stderr");
        }
    }

    /** See {@link #streams(Publisher)}. */
    record Streams(Publisher<byte[]> stdin) implements Stdio {}

    /** See {@link #terminal(Publisher, TerminalSize)}. */
    record Terminal(Publisher<byte[]> stdin, TerminalSize size) implements Stdio {
        public Terminal {
            Objects.requireNonNull(size, "size");
        }
    }
}
