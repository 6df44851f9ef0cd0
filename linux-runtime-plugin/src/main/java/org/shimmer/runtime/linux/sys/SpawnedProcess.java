package org.shimmer.runtime.linux.sys;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

/**
 * A child started by {@link PosixSpawn}, as a {@link Process}, so that what runs runc (its output, its wait, the
 * kill of its tree) stays the same whichever way it was launched. Its exit is learnt and reaped through a pidfd
 * opened right after the spawn: until we reap it nobody else may (the JDK waits only for its own children by pid,
 * the exit monitor reaps only watched pidfds and zombies in nested pid namespaces), so the pid still names it.
 *
 * <p>Invariants: reaped exactly once, by whichever of {@link #waitFor}, {@link #exitValue} or {@link #isAlive} first
 * sees the exit, or after a {@link #destroy} by a thread that waits for it; the pidfd is closed then (a wait polling it at that moment keeps it open until it returns, see
 * {@link OwnedFd}); a pipe's read end is the reader's to close.
 */
public final class SpawnedProcess extends Process {

    private static final int SIGTERM = 15;
    private static final int SIGKILL = 9;
    private static final int ENOEXEC = 8;
    private static final int FILE_MODE = 0666;
    /** Status of a child whose exit could not be read (reaped by someone else after all). */
    private static final int UNKNOWN_EXIT = 255;

    private final int pid;
    private final OwnedFd pidfd;
    private final OutputStream stdin;
    private final InputStream stdout;
    private final InputStream stderr;
    private final AtomicBoolean reaperStarted = new AtomicBoolean();
    private volatile Integer exit;

    private SpawnedProcess(int pid, OwnedFd pidfd, OutputStream stdin, OwnedFd stdout, OwnedFd stderr) {
        this.pid = pid;
        this.pidfd = pidfd;
        this.stdin = stdin;
        this.stdout = input(stdout);
        this.stderr = input(stderr);
    }

    /**
     * Starts {@code command} with the given redirects, through {@code posix_spawnp} when the C library allows,
     * otherwise through a {@link ProcessBuilder}: in the JVM's working directory, with its environment.
     */
    public static Process start(List<String> command, ProcessBuilder.Redirect in, ProcessBuilder.Redirect out,
            ProcessBuilder.Redirect err) throws IOException {
        return start(command, null, Map.of(), in, out, err);
    }

    /**
     * {@link #start(List, ProcessBuilder.Redirect, ProcessBuilder.Redirect, ProcessBuilder.Redirect)} in
     * {@code directory} (null: the JVM's), with {@code environment} set over the JVM's.
     */
    public static Process start(List<String> command, Path directory, Map<String, String> environment,
            ProcessBuilder.Redirect in, ProcessBuilder.Redirect out, ProcessBuilder.Redirect err) throws IOException {
        if (PosixSpawn.AVAILABLE) {
            return spawn(command, directory, environment, in, out, err);
        }
        ProcessBuilder builder = new ProcessBuilder(command).redirectInput(in).redirectOutput(out).redirectError(err);
        builder.environment().putAll(environment);
        return (directory == null ? builder : builder.directory(directory.toFile())).start();
    }

    /** The spawn itself, with posix_spawnp. */
    private static SpawnedProcess spawn(List<String> command, Path directory, Map<String, String> environment,
            ProcessBuilder.Redirect in, ProcessBuilder.Redirect out, ProcessBuilder.Redirect err) throws IOException {
        List<Integer> parentCopies = new ArrayList<>(4);
        List<OwnedFd> ours = new ArrayList<>(3);
        boolean started = false;
        try {
            int[] stdio = new int[3];
            OwnedFd inPipe = null;
            if (in.type() == ProcessBuilder.Redirect.Type.PIPE) {
                int[] ends = LinuxCalls.pipe2(LinuxCalls.O_CLOEXEC);
                parentCopies.add(ends[0]);
                inPipe = OwnedFd.adopt("stdin of " + command.getFirst(), ends[1]);
                ours.add(inPipe);
                stdio[0] = ends[0];
            } else {
                stdio[0] = childEnd(in, 0, parentCopies);
            }
            OwnedFd[] outputs = new OwnedFd[3];
            for (int target = 1; target <= 2; target++) {
                ProcessBuilder.Redirect redirect = target == 1 ? out : err;
                if (redirect.type() == ProcessBuilder.Redirect.Type.PIPE) {
                    int[] ends = LinuxCalls.pipe2(LinuxCalls.O_CLOEXEC);
                    parentCopies.add(ends[1]);
                    outputs[target] = OwnedFd.adopt((target == 1 ? "stdout of " : "stderr of ")
                            + command.getFirst(), ends[0]);
                    ours.add(outputs[target]);
                    stdio[target] = ends[1];
                } else {
                    stdio[target] = childEnd(redirect, target, parentCopies);
                }
            }
            int pid;
            try {
                pid = PosixSpawn.spawn(command, stdio, directory, environment);
            } catch (LinuxCalls.ErrnoException e) {
                if (e.errno() != ENOEXEC) {
                    throw e;
                }
                // A script without #!: as the JDK and the shell run it, by /bin/sh, which exec's it in place (the
                // pid stays the one we watch) and reads it itself. On the descriptors already open: a FIFO
                // opened twice would have shown its other end a close.
                List<String> throughShell = new ArrayList<>(List.of("/bin/sh", "-c", "exec \"$0\" \"$@\""));
                throughShell.addAll(command);
                pid = PosixSpawn.spawn(throughShell, stdio, directory, environment);
            }
            OwnedFd pidfd;
            try {
                pidfd = OwnedFd.pidfd(pid);
            } catch (IOException e) {
                // Cannot happen while it is our unreaped child; if it does, it must not run unwatched.
                try {
                    LinuxCalls.kill(pid, SIGKILL);
                    LinuxCalls.waitPid(pid, LinuxCalls.WEXITED);
                } catch (IOException gone) {
                    // Reaped by someone already (the kernel, with SIGCHLD ignored): the first error says why.
                    e.addSuppressed(gone);
                }
                throw e;
            }
            SpawnedProcess process = new SpawnedProcess(pid, pidfd,
                    inPipe == null ? OutputStream.nullOutputStream() : new PipeOutput(inPipe),
                    outputs[1], outputs[2]);
            started = true;
            return process;
        } finally {
            parentCopies.forEach(LinuxCalls::close);
            if (!started) {
                ours.forEach(OwnedFd::close);
            }
        }
    }

    /** The descriptor the child gets as {@code target}, opened here as the JDK opens it; noted for closing. */
    private static int childEnd(ProcessBuilder.Redirect redirect, int target, List<Integer> parentCopies)
            throws IOException {
        int flags = switch (redirect.type()) {
            case INHERIT -> -1;
            case READ -> LinuxCalls.O_RDONLY;
            case WRITE -> LinuxCalls.O_WRONLY | LinuxCalls.O_CREAT | LinuxCalls.O_TRUNC;
            case APPEND -> LinuxCalls.O_WRONLY | LinuxCalls.O_CREAT | LinuxCalls.O_APPEND;
            case PIPE -> throw new IllegalArgumentException("no pipe for descriptor " + target);
        };
        if (flags < 0) {
            return target;
        }
        File file = Objects.requireNonNull(redirect.file(), "redirect file");
        int fd = LinuxCalls.openat(LinuxCalls.AT_FDCWD, file.getPath().getBytes(LinuxCalls.FILE_NAMES),
                flags | LinuxCalls.O_CLOEXEC, FILE_MODE);
        parentCopies.add(fd);
        return fd;
    }

    private InputStream input(OwnedFd pipe) {
        return pipe == null ? InputStream.nullInputStream() : new PipeInput(pipe, () -> exit != null);
    }

    @Override
    public OutputStream getOutputStream() {
        return stdin;
    }

    @Override
    public InputStream getInputStream() {
        return stdout;
    }

    @Override
    public InputStream getErrorStream() {
        return stderr;
    }

    @Override
    public int waitFor() throws InterruptedException {
        while (!waitFor(1, TimeUnit.SECONDS)) {
            // Not yet: wait on.
        }
        return reap();
    }

    @Override
    public boolean waitFor(long timeout, TimeUnit unit) throws InterruptedException {
        long deadline = System.nanoTime() + unit.toNanos(timeout);
        while (true) {
            if (reap() != null) {
                return true;
            }
            if (Thread.interrupted()) {
                throw new InterruptedException();
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            try {
                // At most 100 ms at a time: an interrupt is seen between polls.
                pidfd.awaitReadable(Duration.ofNanos(Math.min(left, TimeUnit.MILLISECONDS.toNanos(100))));
            } catch (IOException closed) {
                // Closed once reaped: the next reap() says how it ended.
            }
        }
    }

    @Override
    public int exitValue() {
        Integer status = reap();
        if (status == null) {
            throw new IllegalThreadStateException("process " + pid + " has not exited");
        }
        return status;
    }

    @Override
    public boolean isAlive() {
        return reap() == null;
    }

    /** The exit status once it has exited (reaping it the first time), else null. */
    private synchronized Integer reap() {
        if (exit != null) {
            return exit;
        }
        try {
            LinuxCalls.ChildExit child = pidfd.use(fd -> LinuxCalls.waitPidfd(fd, LinuxCalls.WEXITED
                    | LinuxCalls.WNOHANG));
            if (child.pid() == 0) {
                return null;
            }
            exit = child.exitStatus();
        } catch (IOException notOurs) {
            exit = UNKNOWN_EXIT;
        }
        pidfd.close();
        return exit;
    }

    @Override
    public void destroy() {
        signal(SIGTERM);
        reapWhenItEnds();
    }

    @Override
    public Process destroyForcibly() {
        signal(SIGKILL);
        reapWhenItEnds();
        return this;
    }

    /**
     * After a signal, a thread of its own waits for the end and reaps it: the JDK's children have a reaper that
     * does so, and an owner that kills and walks away (a cancelled shim start) must not leave a zombie. The thread
     * ends with the process, however long that takes (a reaper that gave up left a zombie for good).
     */
    private void reapWhenItEnds() {
        if (reap() != null || !reaperStarted.compareAndSet(false, true)) {
            return;
        }
        Thread.ofPlatform().daemon().name("shimmer-reap-" + pid).start(() -> {
            try {
                waitFor();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
    }

    @Override
    public boolean supportsNormalTermination() {
        return true;
    }

    private void signal(int signal) {
        try {
            pidfd.use(fd -> {
                LinuxCalls.pidfdSendSignal(fd, signal);
                return null;
            });
        } catch (IOException gone) {
            // Reaped already, or exited: nothing to signal.
        }
    }

    @Override
    public long pid() {
        return pid;
    }

    @Override
    public Stream<ProcessHandle> children() {
        return handle().map(ProcessHandle::children).orElseGet(Stream::empty);
    }

    @Override
    public Stream<ProcessHandle> descendants() {
        return handle().map(ProcessHandle::descendants).orElseGet(Stream::empty);
    }

    /**
     * The live process, never a later one that got the pid: none once reaped. Looked up under the lock reap()
     * takes, so the pid cannot be reaped, and reused, between the check and the lookup.
     */
    private synchronized Optional<ProcessHandle> handle() {
        return exit != null ? Optional.empty() : ProcessHandle.of(pid);
    }

    @Override
    public String toString() {
        Integer status;
        synchronized (this) {
            status = exit;
        }
        return "SpawnedProcess[pid=" + pid + ", exitValue=" + (status == null ? "\"not exited\"" : status) + "]";
    }

    /**
     * A pipe's read end, blocking while the process runs; once it was reaped, only what is in the pipe is read and
     * then end of file, as the JDK drains a pipe at the exit: a process it left behind holding the write end (a
     * daemon forked with our stdout) must not hold the reader for good.
     */
    private static final class PipeInput extends InputStream {

        private static final int CHUNK = 8192;

        private final OwnedFd fd;
        private final BooleanSupplier exited;

        PipeInput(OwnedFd fd, BooleanSupplier exited) {
            this.fd = fd;
            this.exited = exited;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] bytes, int offset, int length) throws IOException {
            Objects.checkFromIndexSize(offset, length, bytes.length);
            if (length == 0) {
                return 0;
            }
            if (exited.getAsBoolean() && !fd.awaitReadable(Duration.ZERO)) {
                return -1;
            }
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment state = LinuxCalls.allocateCallState(arena);
                MemorySegment buffer = arena.allocate(Math.min(length, CHUNK));
                while (true) {
                    long n = fd.read(buffer, state);
                    if (n == 0) {
                        return -1;
                    }
                    if (n > 0) {
                        MemorySegment.copy(buffer, ValueLayout.JAVA_BYTE, 0, bytes, offset, (int) n);
                        return (int) n;
                    }
                    // Interrupted by a signal: read again.
                }
            }
        }

        @Override
        public void close() {
            fd.close();
        }

        @Override
        public String toString() {
            return "pipe " + fd;
        }
    }

    /** A pipe's write end, blocking; closing it closes the descriptor (the reader then sees end of file). */
    private static final class PipeOutput extends OutputStream {

        private static final int CHUNK = 8192;

        private final OwnedFd fd;

        PipeOutput(OwnedFd fd) {
            this.fd = fd;
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] bytes, int offset, int length) throws IOException {
            Objects.checkFromIndexSize(offset, length, bytes.length);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment state = LinuxCalls.allocateCallState(arena);
                MemorySegment buffer = arena.allocate(Math.max(1, Math.min(length, CHUNK)));
                int done = 0;
                while (done < length) {
                    int chunk = Math.min(length - done, CHUNK);
                    MemorySegment.copy(bytes, offset + done, buffer, ValueLayout.JAVA_BYTE, 0, chunk);
                    long n = fd.write(buffer.asSlice(0, chunk), state);
                    // -1: interrupted by a signal; write again.
                    if (n > 0) {
                        done += (int) n;
                    }
                }
            }
        }

        @Override
        public void close() {
            fd.close();
        }

        @Override
        public String toString() {
            return "pipe " + fd;
        }
    }
}
