package org.shimmer.runtime.linux.sys;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Duration;

/**
 * One raw file descriptor and its one owner: every use goes through {@link #use}, and {@link #close()} is
 * idempotent.
 *
 * <p>Invariant: the number is never read, written, signalled or closed after close, because after close it may
 * already name someone else's file or socket (issue 9: a poll thread's eventfd was rung after the plugin stopped,
 * and "write fd N: Bad file descriptor" was the lucky outcome). A use in flight holds the number: a close during
 * it only marks the descriptor closed, and the last use to finish closes it. A use after close throws
 * {@link ClosedException} without touching the number.
 */
public final class OwnedFd implements AutoCloseable {

    /** Refused: the descriptor was closed. */
    public static final class ClosedException extends IOException {
        ClosedException(String what) {
            super(what + " is closed");
        }
    }

    /** Something done with the raw number while it is guaranteed open. */
    @FunctionalInterface
    public interface Use<T> {
        T apply(int fd) throws IOException;
    }

    private final String what;
    private final int fd;
    private int users;
    private boolean closed;
    private boolean released;

    private OwnedFd(String what, int fd) {
        this.what = what;
        this.fd = fd;
    }

    /** Takes ownership of {@code fd}, which nothing else may close; {@code what} names it in errors. */
    public static OwnedFd adopt(String what, int fd) {
        if (fd < 0) {
            throw new IllegalArgumentException("not a descriptor: " + fd);
        }
        return new OwnedFd(what, fd);
    }

    /** {@code open(path, flags)}, owned. */
    public static OwnedFd open(Path path, int flags) throws IOException {
        return new OwnedFd(path.toString(), LinuxCalls.open(path, flags));
    }

    /** A non-blocking, close-on-exec {@code eventfd}, owned. */
    public static OwnedFd eventfd() throws IOException {
        return new OwnedFd("eventfd", LinuxCalls.eventfd());
    }

    /** {@code pidfd_open(pid)}, owned. */
    public static OwnedFd pidfd(int pid) throws IOException {
        return new OwnedFd("pidfd of " + pid, LinuxCalls.pidfdOpen(pid));
    }

    /** Runs {@code use} with the number, which stays open until it returns. */
    public <T> T use(Use<T> use) throws IOException {
        synchronized (this) {
            if (closed) {
                throw new ClosedException(what);
            }
            users++;
        }
        try {
            return use.apply(fd);
        } finally {
            boolean last;
            synchronized (this) {
                users--;
                last = closed && users == 0 && !released;
                if (last) {
                    released = true;
                }
            }
            if (last) {
                LinuxCalls.close(fd);
            }
        }
    }

    /**
     * Waits up to {@code timeout} for the descriptor to be readable: for a pidfd, for its process to exit (child
     * or not, zombie included). Blocking.
     *
     * @return whether it became readable in time
     */
    public boolean awaitReadable(Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LinuxCalls.allocateCallState(arena);
            MemorySegment fds = arena.allocate(LinuxCalls.POLLFD, 1);
            return use(number -> {
                LinuxCalls.setPollFd(fds, 0, number, LinuxCalls.POLLIN);
                // A zero or negative timeout polls once, without waiting (a negative one is poll's "forever").
                long left = Math.max(0, millisLeft(deadline, System.nanoTime()));
                while (true) {
                    // 0 also after an interruption by a signal: poll again for what is left.
                    if (LinuxCalls.poll(fds, 1, (int) Math.min(left, Integer.MAX_VALUE), state) > 0) {
                        return true;
                    }
                    left = millisLeft(deadline, System.nanoTime());
                    if (left < 0) {
                        return false;
                    }
                }
            });
        }
    }

    /**
     * The milliseconds a poll may wait until {@code deadline}, rounded up; -1 once it passed. Truncated, the last
     * part of a millisecond read as 0 ms left: the last millisecond of every wait was a busy loop of zero-timeout
     * polls, and a zero timeout was all busy loop (a third of every in-JVM start).
     */
    public static long millisLeft(long deadline, long now) {
        long nanos = deadline - now;
        return nanos <= 0 ? -1 : (nanos + 999_999) / 1_000_000;
    }

    /** {@link LinuxCalls#read}: the bytes read, 0 at end of file, -1 when nothing is there now. */
    public long read(MemorySegment buffer, MemorySegment state) throws IOException {
        return use(number -> LinuxCalls.read(number, buffer, state));
    }

    /** {@link LinuxCalls#write}: the bytes written, -1 when a non-blocking descriptor is full. */
    public long write(MemorySegment buffer, MemorySegment state) throws IOException {
        return use(number -> LinuxCalls.write(number, buffer, state));
    }

    /**
     * The number, for a {@code poll(2)} set built by the thread that alone closes this descriptor (so it cannot
     * close while that thread polls); anyone else goes through {@link #use}.
     */
    public int pollNumber() throws ClosedException {
        synchronized (this) {
            if (closed) {
                throw new ClosedException(what);
            }
            return fd;
        }
    }

    /** Whether {@link #close()} was called. */
    public synchronized boolean isClosed() {
        return closed;
    }

    /** Closes the descriptor now, or when the last use in flight ends; later calls do nothing. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            if (users > 0) {
                return;
            }
            released = true;
        }
        LinuxCalls.close(fd);
    }

    @Override
    public String toString() {
        return what;
    }
}
