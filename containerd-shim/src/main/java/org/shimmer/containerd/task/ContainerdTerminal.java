package org.shimmer.containerd.task;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.Executors;
import org.shimmer.runtime.linux.poll.FifoPoller;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TerminalSize;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;

/**
 * A process with a terminal as containerd asks for one ({@code ctr run -t}): the local shim holds the master; what
 * {@code ctr} writes to the stdin FIFO is typed into it, and what the process prints is copied into the stdout FIFO
 * (a terminal has one output; containerd names no stderr). Until it is resized, the terminal is 80×24.
 */
final class ContainerdTerminal {

    private static final Logger log = LoggerFactory.getLogger(ContainerdTerminal.class);
    /**
     * The copies into the stdout FIFOs block when their reader stops reading (a detached {@code ctr}): each on a
     * virtual thread of its own, so a stalled one holds no shared thread.
     */
    private static final Scheduler WRITERS = Schedulers.fromExecutorService(
            Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("shimmer-terminal-", 0).factory()),
            "shimmer-terminal");

    private final FifoPoller.FifoStream stdin;
    private final OwnedFd stdinWriter;
    private final Stdio stdio;

    private ContainerdTerminal(FifoPoller.FifoStream stdin, OwnedFd stdinWriter) {
        this.stdin = stdin;
        this.stdinWriter = stdinWriter;
        this.stdio = Stdio.terminal(stdin != null ? stdin.content() : null, TerminalSize.DEFAULT);
    }

    /**
     * Opens the stdin FIFO for reading, if there is one (never blocking), and holds a write end of it until
     * {@link #closeStdin}: a client that leaves does not end the typing, and the next one that opens the FIFO
     * ({@code ctr task attach}) types on, as under runc's shim. Blocking file work: on io.
     */
    static ContainerdTerminal open(FifoPoller poller, String stdinPath) throws IOException {
        if (stdinPath.isEmpty()) {
            return new ContainerdTerminal(null, null);
        }
        FifoPoller.FifoStream stdin = poller.open(Path.of(stdinPath));
        try {
            return new ContainerdTerminal(stdin, OwnedFd.open(Path.of(stdinPath), LinuxCalls.O_RDWR
                    | LinuxCalls.O_CLOEXEC));
        } catch (IOException | RuntimeException e) {
            stdin.discard();
            throw e;
        }
    }

    /** Close-io, or the process's delete: the held write end goes, so stdin ends once its clients closed it. */
    void closeStdin() {
        if (stdinWriter != null) {
            stdinWriter.close();
        }
    }

    Stdio stdio() {
        return stdio;
    }

    /** The process was not made: our ends of stdin go. */
    void discard() {
        if (stdin != null) {
            stdin.discard();
        }
        closeStdin();
    }

    /**
     * Copies the terminal's output into {@code stdoutPath}, opened read-write so that the open never waits for a
     * reader and a reader that goes away costs the process no {@code SIGPIPE}. Ends with the output.
     */
    void copyOutput(Flux<byte[]> output, String stdoutPath) {
        if (stdoutPath.isEmpty()) {
            output.subscribe(ignored -> {}, error -> {});
            return;
        }
        Flux.using(() -> FileChannel.open(Path.of(stdoutPath), StandardOpenOption.READ, StandardOpenOption.WRITE),
                        channel -> output.publishOn(WRITERS, 16).concatMap(chunk -> Mono.fromCallable(() -> {
                            ByteBuffer buffer = ByteBuffer.wrap(chunk);
                            while (buffer.hasRemaining()) {
                                channel.write(buffer);
                            }
                            return chunk.length;
                        })),
                        ContainerdTerminal::closeQuietly)
                .subscribeOn(WRITERS)
                .subscribe(written -> {}, error -> log.debug("the terminal's copy into {} ended: {}", stdoutPath,
                        error.toString()));
    }

    private static void closeQuietly(FileChannel channel) {
        try {
            channel.close();
        } catch (IOException ignored) {
            // Nothing more goes through it.
        }
    }
}
