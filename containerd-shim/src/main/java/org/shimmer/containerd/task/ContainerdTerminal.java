package org.shimmer.containerd.task;

import java.io.IOException;
import java.nio.file.Path;
import org.shimmer.runtime.linux.poll.FifoPoller;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TerminalSize;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Flux;
import reactor.core.scheduler.Scheduler;

/**
 * A process with a terminal as containerd asks for one ({@code ctr run -t}): the local shim holds the master; what
 * {@code ctr} writes to the stdin FIFO is typed into it, and what the process prints is copied into the stdout FIFO
 * (a terminal has one output; containerd names no stderr). Until it is resized, the terminal is 80×24.
 */
final class ContainerdTerminal {

    private static final Logger log = LoggerFactory.getLogger(ContainerdTerminal.class);

    private final FifoPoller poller;
    private final FifoPoller.FifoStream stdin;
    private final OwnedFd stdinWriter;
    private final Stdio stdio;
    /** The copy into the stdout FIFO, once it began; closed with the process. */
    private volatile FifoPoller.FifoInput output;
    private volatile boolean released;

    private ContainerdTerminal(FifoPoller poller, FifoPoller.FifoStream stdin, OwnedFd stdinWriter) {
        this.poller = poller;
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
            return new ContainerdTerminal(poller, null, null);
        }
        FifoPoller.FifoStream stdin = poller.open(Path.of(stdinPath));
        try {
            return new ContainerdTerminal(poller, stdin, OwnedFd.open(Path.of(stdinPath), LinuxCalls.O_RDWR
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
     * The process was deleted: the held write end of stdin goes, and so does the copy into the stdout FIFO with
     * what its reader never took (a {@code ctr} that was killed): it waited for room that would never come.
     */
    void release() {
        released = true;
        closeStdin();
        FifoPoller.FifoInput copy = output;
        if (copy != null) {
            copy.close();
        }
    }

    /**
     * Copies the terminal's output into {@code stdoutPath} (subscribed on {@code io}) without ever blocking a
     * thread: a write end opened read-write and non-blocking, so that the open waits for no reader and a reader that
     * goes away costs the process no {@code SIGPIPE}; a chunk is written when there is room. Ends with the output,
     * or with {@link #release}. A blocking write once held its thread and the FIFO for good when {@code ctr} was
     * killed with output pending: closing such a channel waits for the write as well.
     */
    void copyOutput(Flux<byte[]> output, String stdoutPath, Scheduler io) {
        if (stdoutPath.isEmpty()) {
            output.subscribe(ignored -> {}, error -> {});
            return;
        }
        FifoPoller.FifoInput copy;
        try {
            copy = poller.input(Path.of(stdoutPath));
        } catch (IOException | RuntimeException e) {
            log.debug("the terminal's output is not copied into {}: {}", stdoutPath, e.toString());
            output.subscribe(ignored -> {}, error -> {});
            return;
        }
        this.output = copy;
        copy.copy(output, io, () -> {});
        if (released) {
            copy.close();
        }
    }
}
