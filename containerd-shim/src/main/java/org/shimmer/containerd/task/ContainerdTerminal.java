package org.shimmer.containerd.task;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.Executors;
import org.shimmer.runtime.linux.poll.FifoPoller;
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
    private final Stdio stdio;

    private ContainerdTerminal(FifoPoller.FifoStream stdin) {
        this.stdin = stdin;
        this.stdio = Stdio.terminal(stdin != null ? stdin.content() : null, TerminalSize.DEFAULT);
    }

    /** Opens the stdin FIFO for reading, if there is one (never blocking). Blocking file work: on io. */
    static ContainerdTerminal open(FifoPoller poller, String stdinPath) throws IOException {
        return new ContainerdTerminal(stdinPath.isEmpty() ? null : poller.open(Path.of(stdinPath)));
    }

    Stdio stdio() {
        return stdio;
    }

    /** The process was not made: our end of stdin goes. */
    void discard() {
        if (stdin != null) {
            stdin.discard();
        }
    }

    /**
     * Copies the terminal's output into {@code stdoutPath}, opened read-write so that the open never waits for a
     * reader and a reader that goes away costs the process no {@code SIGPIPE}. Ends with the output.
     */
    static void copyOutput(Flux<byte[]> output, String stdoutPath) {
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
