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
}
