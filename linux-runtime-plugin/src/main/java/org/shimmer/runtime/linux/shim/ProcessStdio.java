package org.shimmer.runtime.linux.shim;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.reactivestreams.Publisher;
import org.shimmer.runtime.linux.poll.FifoPoller;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.Stdio;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.Disposable;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;

/**
 * The standard streams of one process, as a shim is told them: empty strings for none, regular files, or FIFOs
 * this class makes in the bundle's work directory and reads with the {@link FifoPoller}. Read ends are opened
 * before the process exists, so no output is lost and the shim never blocks opening them.
 */
public final class ProcessStdio {

    private static final Logger log = LoggerFactory.getLogger(ProcessStdio.class);

    private final String stdin;
    private final String stdout;
    private final String stderr;
    private final FifoPoller.FifoStream stdoutStream;
    private final FifoPoller.FifoStream stderrStream;
    private final Publisher<byte[]> stdinSource;
    private final List<Path> fifos;
    private final Scheduler io;
    private final FileChannel stdinWriter;
    private final List<FileChannel> launchKeepers;
    private final boolean files;
    private final boolean terminal;
    private volatile Disposable stdinCopy;

    private ProcessStdio(String stdin, String stdout, String stderr, FifoPoller.FifoStream stdoutStream,
            FifoPoller.FifoStream stderrStream, Publisher<byte[]> stdinSource, List<Path> fifos, Scheduler io,
            FileChannel stdinWriter, List<FileChannel> launchKeepers, boolean files, boolean terminal) {
        this.stdin = stdin;
        this.stdout = stdout;
        this.stderr = stderr;
        this.stdoutStream = stdoutStream;
        this.stderrStream = stderrStream;
        this.stdinSource = stdinSource;
        this.fifos = fifos;
        this.io = io;
        this.stdinWriter = stdinWriter;
        this.launchKeepers = launchKeepers;
        this.files = files;
        this.terminal = terminal;
    }

    /**
     * Prepares the streams of process {@code name} (the container id for init, else the exec id). Blocking: call
     * it on the io scheduler. On failure nothing it made is left.
     */
    public static ProcessStdio prepare(Stdio stdio, Path ioDir, String name, FifoPoller poller, Scheduler io)
            throws IOException {
        return switch (stdio) {
            case Stdio.None none -> new ProcessStdio("", "", "", null, null, null, List.of(), io, null, List.of(), false,
                    false);
            case Stdio.Files files -> {
                touch(files.stdout());
                touch(files.stderr());
                yield new ProcessStdio("", files.stdout().toString(), files.stderr().toString(), null, null, null,
                        List.of(), io, null, List.of(), true, false);
            }
            case Stdio.Streams streams -> fifos(streams.stdin(), ioDir, name, poller, io, false);
            case Stdio.Terminal terminal -> terminalFifos(terminal, ioDir, name, poller, io);
        };
    }

    /**
     * The FIFOs of a terminal process as containerd's shim takes them: stdin if any, and stdout, carrying what the
     * shim reads from the pty master; no stderr (the terminal has one output, and the shim opens no stderr with a
     * console). Blocking; on failure nothing it made is left.
     */
    public static ProcessStdio terminalFifos(Stdio.Terminal terminal, Path ioDir, String name, FifoPoller poller,
            Scheduler io) throws IOException {
        return fifos(terminal.stdin(), ioDir, name, poller, io, true);
    }

    private static ProcessStdio fifos(Publisher<byte[]> stdinSource, Path ioDir, String name, FifoPoller poller,
            Scheduler io, boolean terminal) throws IOException {
        List<Path> made = new ArrayList<>(3);
        List<FifoPoller.FifoStream> opened = new ArrayList<>(2);
        FileChannel stdinWriter = null;
        List<FileChannel> keepers = new ArrayList<>(2);
        try {
            if (!Files.isDirectory(ioDir)) {
                Files.createDirectories(ioDir, PosixFilePermissions.asFileAttribute(
                        PosixFilePermissions.fromString("rwx------")));
            }
            Path stdout = mkfifo(ioDir.resolve(name + "-stdout"), made);
            Path stderr = terminal ? null : mkfifo(ioDir.resolve(name + "-stderr"), made);
            Path stdin = stdinSource != null ? mkfifo(ioDir.resolve(name + "-stdin"), made) : null;
            FifoPoller.FifoStream out = poller.open(stdout);
            opened.add(out);
            FifoPoller.FifoStream err = null;
            if (stderr != null) {
                err = poller.open(stderr);
                opened.add(err);
            }
            // Read-write, so the open never waits for a reader, and whoever opens the read end (the shim, or
            // runc handing it to the container) never waits for a writer.
            if (stdin != null) {
                stdinWriter = FileChannel.open(stdin, StandardOpenOption.READ, StandardOpenOption.WRITE);
            }
            // Until the process exists, these keep each output FIFO open for reading too, so the write-only open
            // of whoever launches it never waits, even if our reader was already closed by a cancelled subscriber.
            keepers.add(FileChannel.open(stdout, StandardOpenOption.READ, StandardOpenOption.WRITE));
            if (stderr != null) {
                keepers.add(FileChannel.open(stderr, StandardOpenOption.READ, StandardOpenOption.WRITE));
            }
            return new ProcessStdio(stdin != null ? stdin.toString() : "", stdout.toString(),
                    stderr != null ? stderr.toString() : "", out, err, stdinSource, List.copyOf(made), io,
                    stdinWriter, List.copyOf(keepers), false, terminal);
        } catch (IOException | RuntimeException e) {
            opened.forEach(FifoPoller.FifoStream::discard);
            keepers.forEach(ProcessStdio::closeQuietly);
            if (stdinWriter != null) {
                stdinWriter.close();
            }
            for (Path fifo : made) {
                Files.deleteIfExists(fifo);
            }
            throw e;
        }
    }

    /**
     * The name a process's FIFOs start with: the container id for init, {@code exec+<exec id>} for an exec. The
     * {@code +} is in no valid id, so an exec named like its container never takes init's FIFOs.
     */
    public static String fifoName(String containerId, String execId) {
        return execId.isEmpty() ? containerId : "exec+" + execId;
    }

    /**
     * Removes the FIFOs {@link #prepare} makes for process {@code name}, when no {@code ProcessStdio} of it is left
     * to do so (its process was deleted after a reattach). Blocking.
     */
    public static void removeFifos(Path ioDir, String name) throws IOException {
        for (String stream : List.of("-stdin", "-stdout", "-stderr")) {
            Files.deleteIfExists(ioDir.resolve(name + stream));
        }
    }

    /** What the shim is told for stdin: a FIFO path or empty. */
    public String stdin() {
        return stdin;
    }

    /** What the shim is told for stdout. */
    public String stdout() {
        return stdout;
    }

    /** What the shim is told for stderr. */
    public String stderr() {
        return stderr;
    }

    /** The output streams for the caller; empty fluxes unless streams were asked for. */
    public ProcessIo io(int pid) {
        return new ProcessIo(pid,
                stdoutStream != null ? stdoutStream.content() : Flux.empty(),
                stderrStream != null ? stderrStream.content() : Flux.empty());
    }

    /**
     * The process was launched (or its launch failed): the output FIFOs no longer need keeping open, and must
     * not be, or their reader would never see end of file.
     */
    public void launched() {
        launchKeepers.forEach(ProcessStdio::closeQuietly);
    }

    /** Whether the process has a terminal ({@link #terminalFifos}). */
    public boolean isTerminal() {
        return terminal;
    }

    /** Whether the streams are regular files (which both may share). */
    public boolean isFiles() {
        return files;
    }

    /**
     * Starts copying the caller's stdin publisher into the process, once it exists. When the publisher ends, our
     * end of the FIFO is closed and {@code onEnd} runs (a shim holds a writer of its own until it is told to close
     * stdin, so only both together give the process end of file).
     */
    public void startStdin(Runnable onEnd) {
        if (stdinSource == null || stdinWriter == null) {
            return;
        }
        // Subscribed and asked on io: a caller's source that reads on request must not do so on an event loop.
        stdinCopy = Flux.from(stdinSource)
                .subscribeOn(io)
                .publishOn(io, 16)
                .concatMap(chunk -> write(stdinWriter, chunk))
                .doFinally(signal -> closeQuietly(stdinWriter))
                .subscribe(written -> {}, error -> {
                    log.debug("stdin copy into {} ended: {}", stdin, error.toString());
                    onEnd.run();
                }, onEnd);
    }

    /** Stops copying stdin and closes our end of the FIFO. */
    public void closeStdin() {
        Disposable copy = stdinCopy;
        if (copy != null) {
            copy.dispose();
        }
        if (stdinWriter != null) {
            closeQuietly(stdinWriter);
        }
    }

    /**
     * Completes when the output was read to its end (or after {@code timeout} if nobody consumes it), then
     * releases everything: FIFOs closed and removed.
     */
    public Mono<Void> drained(Duration timeout) {
        return outputEnded(timeout).then(Mono.<Void>fromRunnable(this::release).subscribeOn(io));
    }

    /** Completes when the subscribed output has reached its end, or after {@code timeout}; releases nothing. */
    public Mono<Void> outputEnded(Duration timeout) {
        // Only a subscribed stream is read, so only a subscribed stream can reach its end.
        return Mono.when(endOf(stdoutStream), endOf(stderrStream)).timeout(timeout, Mono.<Void>empty(), io);
    }

    private static Mono<Void> endOf(FifoPoller.FifoStream stream) {
        return stream != null && stream.subscribed() ? stream.closed() : Mono.empty();
    }

    /** Releases everything now: readers closed, stdin copy stopped, FIFOs removed. Blocking. */
    public void release() {
        if (stdoutStream != null) {
            stdoutStream.discard();
        }
        if (stderrStream != null) {
            stderrStream.discard();
        }
        closeStdin();
        launched();
        for (Path fifo : fifos) {
            try {
                Files.deleteIfExists(fifo);
            } catch (IOException e) {
                log.warn("could not remove FIFO {}", fifo, e);
            }
        }
    }

    private static Mono<Integer> write(FileChannel channel, byte[] chunk) {
        return Mono.fromCallable(() -> {
            ByteBuffer buffer = ByteBuffer.wrap(chunk);
            while (buffer.hasRemaining()) {
                channel.write(buffer);
            }
            return chunk.length;
        });
    }

    private static Path mkfifo(Path path, List<Path> made) throws IOException {
        LinuxCalls.mkfifo(path, 0600);
        made.add(path);
        return path;
    }

    private static void touch(Path file) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        if (!Files.exists(file)) {
            Files.createFile(file);
        }
    }

    private static void closeQuietly(FileChannel channel) {
        try {
            channel.close();
        } catch (IOException ignored) {
            // The process is gone; its stdin with it.
        }
    }
}
