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

    /**
     * Streams that already exist, named by path, as containerd's clients make them ({@code ctr}'s FIFOs): the
     * process opens them itself, so its output goes straight to their reader. {@code null} for a stream it does
     * not have ({@code /dev/null}). Each must exist: a FIFO, or a file an output is appended to. The shim holds a
     * read end of each output FIFO while the process lives (a reader that went away does not kill it with
     * {@code SIGPIPE}; its writes wait once the FIFO is full, as under containerd's shim) and a write end of the
     * stdin FIFO until {@link ShimClient#closeIo} (so the process sees end of input only once its writer closed
     * and the shim was told: a writer that opens late loses nothing).
     */
    static Stdio fifos(Path stdin, Path stdout, Path stderr) {
        return new Fifos(stdin, stdout, stderr);
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

    /** See {@link #fifos(Path, Path, Path)}. */
    record Fifos(Path stdin, Path stdout, Path stderr) implements Stdio {}

    /** See {@link #streams(Publisher)}. */
    record Streams(Publisher<byte[]> stdin) implements Stdio {}

    /** See {@link #terminal(Publisher, TerminalSize)}. */
    record Terminal(Publisher<byte[]> stdin, TerminalSize size) implements Stdio {
        public Terminal {
            Objects.requireNonNull(size, "size");
        }
    }
}
