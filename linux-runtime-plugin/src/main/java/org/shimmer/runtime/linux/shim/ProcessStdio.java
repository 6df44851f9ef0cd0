package org.shimmer.runtime.linux.shim;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.reactivestreams.Publisher;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.poll.FifoPoller;
import org.shimmer.runtime.linux.poll.PollLoop;
import org.shimmer.runtime.linux.poll.PtyMaster;
import org.shimmer.runtime.linux.sys.ConsoleSocket;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TerminalSize;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
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
    private final FifoPoller.FifoInput stdinWriter;
    private final List<FileChannel> launchKeepers;
    private final boolean files;
    private final boolean ptyOverFifos;
    private final PtyMaster terminal;
    private final ConsoleSocket console;
    private final TerminalSize size;
    private final HeldEnds held;
    /** Whether the launch ended (guarded by this): until then a close of stdin waits for it. */
    private boolean launchEnded;
    private boolean stdinClosedEarly;
    /** Whether a launch began (guarded by this): from then on its end, not the runtime's stop, closes its ends. */
    private boolean launchBegun;
    /** Whether the runtime stopped before any launch began (guarded by this): none may begin any more. */
    private boolean stoppedUnlaunched;
    /** The loop whose stop closes what is held for a launch that never began (guarded by this); null if none. */
    private PollLoop stopWatch;
    private final Runnable closeAtStop = this::closeAtStop;

    private ProcessStdio(String stdin, String stdout, String stderr, FifoPoller.FifoStream stdoutStream,
            FifoPoller.FifoStream stderrStream, Publisher<byte[]> stdinSource, List<Path> fifos, Scheduler io,
            FifoPoller.FifoInput stdinWriter, List<FileChannel> launchKeepers, boolean files, boolean ptyOverFifos) {
        this(stdin, stdout, stderr, stdoutStream, stderrStream, stdinSource, fifos, io, stdinWriter, launchKeepers,
                files, ptyOverFifos, null, null, null, HeldEnds.NONE);
    }

    private ProcessStdio(String stdin, String stdout, String stderr, FifoPoller.FifoStream stdoutStream,
            FifoPoller.FifoStream stderrStream, Publisher<byte[]> stdinSource, List<Path> fifos, Scheduler io,
            FifoPoller.FifoInput stdinWriter, List<FileChannel> launchKeepers, boolean files, boolean ptyOverFifos,
            PtyMaster terminal, ConsoleSocket console, TerminalSize size, HeldEnds held) {
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
        this.ptyOverFifos = ptyOverFifos;
        this.terminal = terminal;
        this.console = console;
        this.size = size;
        this.held = held;
    }

    /**
     * Prepares the streams of process {@code name} (the container id for init, else the exec id). Blocking: call
     * it on the io scheduler. On failure nothing it made is left.
     */
    public static ProcessStdio prepare(Stdio stdio, Path ioDir, String name, FifoPoller poller, Scheduler io)
            throws IOException {
        return heldUntilLaunch(stdio, ioDir, name, poller, io).closedAtStopUnlessLaunched(poller.loop());
    }

    private static ProcessStdio heldUntilLaunch(Stdio stdio, Path ioDir, String name, FifoPoller poller,
            Scheduler io) throws IOException {
        return switch (stdio) {
            case Stdio.None none -> new ProcessStdio("", "", "", null, null, null, List.of(), io, null, List.of(), false,
                    false);
            case Stdio.Files files -> {
                touch(files.stdout());
                touch(files.stderr());
                yield new ProcessStdio("", files.stdout().toString(), files.stderr().toString(), null, null, null,
                        List.of(), io, null, List.of(), true, false);
            }
            case Stdio.Fifos given -> given(given, io);
            case Stdio.Streams streams -> fifos(streams.stdin(), ioDir, name, poller, io, false);
            case Stdio.Terminal terminal -> terminalFifos(terminal, ioDir, name, poller, io);
        };
    }

    /**
     * A terminal as the local shim makes it: runc is given {@link #consoleSocket()}, sends the master there, and
     * {@link #takeConsole()} puts it on {@code loop}; the process's own streams are the terminal's slave. Blocking.
     */
    public static ProcessStdio console(Stdio.Terminal terminal, Path ioDir, String name, PollLoop loop,
            Scheduler io) throws IOException {
        ConsoleSocket console = ConsoleSocket.listen(ioDir);
        return new ProcessStdio("", "", "", null, null, terminal.stdin(), List.of(), io, null, List.of(), false,
                false, new PtyMaster(loop, name), console, terminal.size(), HeldEnds.NONE)
                .closedAtStopUnlessLaunched(loop);
    }

    /**
     * Has {@code loop}'s stop close what this holds for a launch (the console socket, the FIFO ends that let the
     * launcher open them) unless a launch began by then. A process made and never started (an exec) held them in
     * the JVM after the plugin stopped, a listening socket and two descriptors per exec and reload, until a later
     * runtime deleted the bundle. A launch under way keeps them: its end closes them, and without them its open of
     * an output FIFO, whose reader the stop closed, would wait for good.
     */
    private ProcessStdio closedAtStopUnlessLaunched(PollLoop loop) {
        if (launchKeepers.isEmpty() && console == null && held == HeldEnds.NONE) {
            return this;
        }
        synchronized (this) {
            stopWatch = loop;
        }
        loop.onStop(closeAtStop);
        return this;
    }

    private void closeAtStop() {
        synchronized (this) {
            if (launchBegun || launchEnded) {
                return;
            }
            stoppedUnlaunched = true;
        }
        launchKeepers.forEach(ProcessStdio::closeQuietly);
        closeConsole();
        if (held.stdin() != null) {
            held.stdin().close();
        }
        held.outputs().forEach(OwnedFd::close);
    }

    /**
     * A launch of the process begins: from now on what it needs stays open until {@link #launched()}.
     * {@link UnavailableException} once the runtime stopped with the process unlaunched: what it needed is closed.
     */
    public void beginLaunch() {
        synchronized (this) {
            if (stoppedUnlaunched) {
                throw new UnavailableException("the runtime stopped before the process was launched");
            }
            launchBegun = true;
        }
    }

    /**
     * Streams that exist already (a containerd client's FIFOs): the process opens them by path. Each output FIFO
     * gets a read end of ours, so the process's open never waits and a reader that goes away costs it no
     * {@code SIGPIPE}; the stdin FIFO a write end of ours, so the process's open never waits for the client and
     * reads no early end of input. Regular files are used as they are. Blocking; on failure nothing is held.
     */
    private static ProcessStdio given(Stdio.Fifos given, Scheduler io) throws IOException {
        List<OwnedFd> outputs = new ArrayList<>(2);
        OwnedFd stdinEnd = null;
        try {
            for (Path output : new Path[] {given.stdout(), given.stderr()}) {
                if (output != null && isFifo(output)) {
                    outputs.add(OwnedFd.open(output, LinuxCalls.O_RDONLY | LinuxCalls.O_NONBLOCK
                            | LinuxCalls.O_CLOEXEC));
                }
            }
            if (given.stdin() != null && isFifo(given.stdin())) {
                stdinEnd = OwnedFd.open(given.stdin(), LinuxCalls.O_RDWR | LinuxCalls.O_CLOEXEC);
            }
        } catch (IOException | RuntimeException e) {
            outputs.forEach(OwnedFd::close);
            throw e;
        }
        return new ProcessStdio(pathOrEmpty(given.stdin()), pathOrEmpty(given.stdout()),
                pathOrEmpty(given.stderr()), null, null, null, List.of(), io, null, List.of(), true, false, null,
                null, null, new HeldEnds(stdinEnd, List.copyOf(outputs)));
    }

    /** Whether {@code path} is a FIFO; {@link NoSuchFileException} naming it when it does not exist. Blocking. */
    private static boolean isFifo(Path path) throws IOException {
        int mode = (Integer) Files.getAttribute(path, "unix:mode");
        return (mode & 0170000) == 0010000;
    }

    private static String pathOrEmpty(Path path) {
        return path != null ? path.toString() : "";
    }

    /** The ends of given FIFOs the shim holds: stdin's until it is closed, the outputs' until release. */
    private record HeldEnds(OwnedFd stdin, List<OwnedFd> outputs) {
        static final HeldEnds NONE = new HeldEnds(null, List.of());
    }

    /**
     * A terminal as containerd's shim takes it, the shim holding the master: FIFOs for stdin if any, and stdout,
     * carrying what the shim reads from the master; no stderr (a terminal has one output, and the shim opens no
     * stderr with a console). Blocking; on failure nothing it made is left.
     */
    public static ProcessStdio terminalFifos(Stdio.Terminal terminal, Path ioDir, String name, FifoPoller poller,
            Scheduler io) throws IOException {
        return fifos(terminal.stdin(), ioDir, name, poller, io, true);
    }

    private static ProcessStdio fifos(Publisher<byte[]> stdinSource, Path ioDir, String name, FifoPoller poller,
            Scheduler io, boolean terminal) throws IOException {
        List<Path> made = new ArrayList<>(3);
        List<FifoPoller.FifoStream> opened = new ArrayList<>(2);
        FifoPoller.FifoInput stdinWriter = null;
        List<FileChannel> keepers = new ArrayList<>(2);
        try {
            if (!Files.isDirectory(ioDir)) {
                // Never its parents: the work directory is the bundle's, and a call on a client whose bundle was
                // deleted (an exec after a container's release) made it again, and the id could not be run again.
                try {
                    Files.createDirectory(ioDir, PosixFilePermissions.asFileAttribute(
                            PosixFilePermissions.fromString("rwx------")));
                } catch (FileAlreadyExistsException madeMeanwhile) {
                    if (!Files.isDirectory(ioDir, LinkOption.NOFOLLOW_LINKS)) {
                        throw madeMeanwhile;
                    }
                }
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
            // runc handing it to the container) never waits for a writer; written from the poll thread.
            if (stdin != null) {
                stdinWriter = poller.input(stdin);
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

    /**
     * Holds open, for reading and writing, the output FIFOs process {@code name} has in {@code ioDir} that no
     * {@code ProcessStdio} of this runtime holds (a runtime before a reload made them, and its stop closed its ends):
     * until closed, a launcher's blocking open of each for writing finds a reader. Without them containerd's shim
     * never answered the start, by the next runtime, of an exec made before a stop. Blocking.
     */
    public static AutoCloseable holdOutputsForLaunch(Path ioDir, String name) throws IOException {
        List<OwnedFd> ends = new ArrayList<>(2);
        try {
            for (String stream : List.of("-stdout", "-stderr")) {
                Path fifo = ioDir.resolve(name + stream);
                if (Files.exists(fifo, LinkOption.NOFOLLOW_LINKS) && isFifo(fifo)) {
                    ends.add(OwnedFd.open(fifo, LinuxCalls.O_RDWR | LinuxCalls.O_NONBLOCK | LinuxCalls.O_NOFOLLOW
                            | LinuxCalls.O_CLOEXEC));
                }
            }
        } catch (IOException | RuntimeException e) {
            ends.forEach(OwnedFd::close);
            throw e;
        }
        return () -> ends.forEach(OwnedFd::close);
    }

    /**
     * Removes every FIFO in {@code ioDir}, once its container was deleted: those of processes no client of this
     * runtime prepared (a runtime before a reload did; their streams died with it) would keep their ids taken
     * ("its stdio FIFOs already exist") when the bundle runs again. Only FIFOs and sockets, never following a
     * link, never a directory. Blocking.
     */
    public static void removeAllFifos(Path ioDir) throws IOException {
        if (!LinuxCalls.isDirectoryNoFollow(ioDir)) {
            return;
        }
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(ioDir)) {
            for (Path entry : entries) {
                BasicFileAttributes attributes;
                try {
                    attributes = Files.readAttributes(entry, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
                } catch (NoSuchFileException removedMeanwhile) {
                    // An exec's delete in flight released its streams: listed, then gone. It failed init's delete,
                    // after its container was gone, and left the FIFOs listed after it.
                    continue;
                }
                if (attributes.isOther()) {
                    Files.deleteIfExists(entry);
                }
            }
        }
    }

    /** The socket runc sends a terminal's master to; null without a local terminal. */
    public Path consoleSocket() {
        return console != null ? console.path() : null;
    }

    /**
     * After runc created the process and exited: takes the master it sent, sets the terminal's size and starts
     * copying; then the console socket goes. Nothing without a local terminal. Blocking.
     */
    public void takeConsole() throws IOException {
        if (console == null) {
            return;
        }
        try {
            terminal.attach(console.take());
            terminal.resize(size.width(), size.height());
        } finally {
            closeConsole();
        }
    }

    /** Whether the process has a terminal whose master arrived: it can be resized. */
    public boolean hasTerminal() {
        return terminal != null && terminal.attached();
    }

    /** Sets the terminal's size; {@link FailedPreconditionException} without one. Blocking. */
    public void resize(TerminalSize newSize) throws IOException {
        if (terminal == null) {
            throw new FailedPreconditionException("it has no terminal");
        }
        terminal.resize(newSize.width(), newSize.height());
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
        if (terminal != null) {
            return new ProcessIo(pid, terminal.output(), Flux.empty());
        }
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
        closeConsole();
        boolean closeStdin;
        PollLoop watch;
        synchronized (this) {
            launchEnded = true;
            closeStdin = stdinClosedEarly;
            watch = stopWatch;
            stopWatch = null;
        }
        if (watch != null) {
            watch.forget(closeAtStop);
        }
        if (closeStdin) {
            closeStdin();
        }
    }

    /**
     * No process will be launched with these streams any more (its launch failed, or it is deleted unstarted):
     * {@link #launched()}, and a terminal whose master did not come (runc failed, or its console socket was
     * refused) is closed, ending its reader, which would otherwise wait for a master until the delete where a
     * FIFO's reader sees its end. Not on a cancelled launch: its master may still be on its way, or come with
     * a later start.
     */
    public void abandoned() {
        launched();
        if (terminal != null && !terminal.attached()) {
            terminal.close();
        }
    }

    private void closeConsole() {
        if (console != null) {
            try {
                console.close();
            } catch (IOException e) {
                log.warn("could not remove the console socket {}", console, e);
            }
        }
    }

    /** Whether the process has a terminal, held by the shim ({@link #terminalFifos}) or by us ({@link #console}). */
    public boolean isTerminal() {
        return ptyOverFifos || terminal != null;
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
        if (terminal != null && stdinSource != null) {
            terminal.type(stdinSource, io, onEnd);
            return;
        }
        if (stdinSource == null || stdinWriter == null) {
            return;
        }
        // Subscribed on io: a caller's source that reads on request must not do so on an event loop. Written from
        // the poll thread when the FIFO has room: a process that does not read holds no thread.
        stdinWriter.copy(stdinSource, io, onEnd);
    }

    /** Stops copying stdin and closes our end of the FIFO. */
    public void closeStdin() {
        synchronized (this) {
            // Before the launch our end is what lets runc open the FIFO without waiting (it opens it blocking,
            // on an io thread): closed now, a close-io before an exec's start held that thread for good (review).
            // The process sees the end of its input once it exists.
            if (!launchEnded) {
                stdinClosedEarly = true;
                return;
            }
        }
        if (held.stdin() != null) {
            held.stdin().close();
        }
        if (terminal != null) {
            terminal.stopTyping();
        }
        if (stdinWriter != null) {
            stdinWriter.close();
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
        List<Mono<Void>> ends = new ArrayList<>(3);
        if (stdoutStream != null && stdoutStream.subscribed()) {
            ends.add(stdoutStream.closed());
        }
        if (stderrStream != null && stderrStream.subscribed()) {
            ends.add(stderrStream.closed());
        }
        if (terminal != null && terminal.subscribed()) {
            ends.add(terminal.outputEnded());
        }
        // Nothing to wait for, no timer: arming one on an io thread and cancelling it at once woke that thread for
        // nothing, once per process deleted.
        return ends.isEmpty() ? Mono.empty() : Mono.when(ends).timeout(timeout, Mono.<Void>empty(), io);
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
        held.outputs().forEach(OwnedFd::close);
        if (terminal != null) {
            terminal.close();
        }
        for (Path fifo : fifos) {
            try {
                Files.deleteIfExists(fifo);
            } catch (IOException e) {
                log.warn("could not remove FIFO {}", fifo, e);
            }
        }
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
