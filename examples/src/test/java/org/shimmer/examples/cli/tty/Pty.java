package org.shimmer.examples.cli.tty;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.shimmer.runtime.shim.TerminalSize;

/**
 * A real pseudo-terminal opened by a test, as a terminal emulator opens one: the test holds the master (what the
 * user types and sees), a child gets the slave as its stdio. The test also keeps a slave descriptor of its own, so
 * the terminal's attributes can be read after the child is gone and the master never reads EIO meanwhile. Every
 * read waits at most a given time ({@code poll}): a test that expects output that never comes fails, never hangs.
 */
@SuppressWarnings("restricted")
public final class Pty implements AutoCloseable {

    private static final int O_RDWR = 2;
    private static final int O_NOCTTY = 0400;
    private static final int O_CLOEXEC = 02000000;
    private static final long TIOCSWINSZ = 0x5414;
    private static final short POLLIN = 0x1;
    private static final int EINTR = 4;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final MethodHandle POSIX_OPENPT = function("posix_openpt",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle GRANTPT = function("grantpt",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle UNLOCKPT = function("unlockpt",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle PTSNAME_R = function("ptsname_r",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG));
    private static final MethodHandle OPEN = function("open",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle CLOSE = function("close",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle READ = function("read",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG));
    private static final MethodHandle WRITE = function("write",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG));
    private static final MethodHandle POLL = function("poll",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_INT));
    private static final MethodHandle IOCTL = LINKER.downcallHandle(
            LINKER.defaultLookup().find("ioctl").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
                    ValueLayout.ADDRESS),
            Linker.Option.captureCallState("errno"), Linker.Option.firstVariadicArg(2));

    private final int master;
    private final int slave;
    private final Path slavePath;
    /** Everything read from the master and not yet consumed by an {@link #await}. */
    private final ByteArrayOutputStream unread = new ByteArrayOutputStream();
    /** Everything read from the master, for failure messages. */
    private final StringBuilder transcript = new StringBuilder();
    private boolean closed;

    private Pty(int master, int slave, Path slavePath) {
        this.master = master;
        this.slave = slave;
        this.slavePath = slavePath;
    }

    /** Opens a pseudo-terminal of {@code size}, in the kernel's default (cooked) mode. */
    public static Pty open(TerminalSize size) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int master = check((int) POSIX_OPENPT.invokeExact(state, O_RDWR | O_NOCTTY | O_CLOEXEC), state,
                    "posix_openpt");
            try {
                check((int) GRANTPT.invokeExact(state, master), state, "grantpt");
                check((int) UNLOCKPT.invokeExact(state, master), state, "unlockpt");
                MemorySegment name = arena.allocate(128);
                int failed = (int) PTSNAME_R.invokeExact(state, master, name, 128L);
                if (failed != 0) {
                    throw new IOException("ptsname_r(" + master + ") failed: errno " + failed);
                }
                Path slavePath = Path.of(name.getString(0));
                int slave = check((int) OPEN.invokeExact(state, arena.allocateFrom(slavePath.toString()),
                        O_RDWR | O_NOCTTY | O_CLOEXEC), state, "open " + slavePath);
                Pty pty = new Pty(master, slave, slavePath);
                pty.resize(size);
                return pty;
            } catch (IOException | RuntimeException e) {
                int ignored = (int) CLOSE.invokeExact(state, master);
                throw e;
            }
        } catch (IOException | RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("opening a pseudo-terminal", t);
        }
    }

    /** The slave's path, {@code /dev/pts/N}: what the child's stdio opens. */
    public Path slavePath() {
        return slavePath;
    }

    /** Our own descriptor of the slave, for its attributes ({@link Termios#get}). */
    public int slaveFd() {
        return slave;
    }

    /** Sets the window size as a terminal emulator does when its window is resized: the foreground group gets SIGWINCH. */
    public void resize(TerminalSize size) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment winsize = arena.allocate(Termios.WINSIZE);
            Termios.WS_ROW.set(winsize, 0L, (short) size.height());
            Termios.WS_COL.set(winsize, 0L, (short) size.width());
            MemorySegment state = arena.allocate(CALL_STATE);
            check((int) IOCTL.invokeExact(state, master, TIOCSWINSZ, winsize), state, "ioctl TIOCSWINSZ");
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("TIOCSWINSZ", t);
        }
    }

    /** Types {@code text} as a user would (UTF-8 bytes into the master). */
    public void type(String text) throws IOException {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocateFrom(ValueLayout.JAVA_BYTE, bytes);
            MemorySegment state = arena.allocate(CALL_STATE);
            long written = 0;
            while (written < bytes.length) {
                long n = (long) WRITE.invokeExact(state, master, buffer.asSlice(written), bytes.length - written);
                if (n < 0 && (int) ERRNO.get(state, 0L) != EINTR) {
                    throw new IOException("write to " + slavePath + " master failed: errno " + ERRNO.get(state, 0L));
                }
                written += Math.max(n, 0);
            }
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("write", t);
        }
    }

    /**
     * Reads what the terminal shows until {@code regex} matches it, at most {@code timeout}; returns the match and
     * consumes the output up to its end. Fails, with all that was shown, when it does not come in time.
     */
    public Matcher await(String regex, Duration timeout) throws IOException {
        Pattern pattern = Pattern.compile(regex);
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            String shown = unread.toString(StandardCharsets.UTF_8);
            Matcher matcher = pattern.matcher(shown);
            if (matcher.find()) {
                byte[] rest = shown.substring(matcher.end()).getBytes(StandardCharsets.UTF_8);
                unread.reset();
                unread.write(rest);
                return matcher;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0 || !readSome(Duration.ofNanos(left))) {
                throw new AssertionError("the terminal did not show /" + regex + "/ within " + timeout
                        + "; it showed: " + printable(transcript.toString()));
            }
        }
    }

    /** Waits up to {@code timeout} for output and appends it; false on timeout or when the slave side hung up. */
    private boolean readSome(Duration timeout) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pollfd = arena.allocate(8, 4);
            pollfd.set(ValueLayout.JAVA_INT, 0, master);
            pollfd.set(ValueLayout.JAVA_SHORT, 4, POLLIN);
            MemorySegment state = arena.allocate(CALL_STATE);
            int ready = (int) POLL.invokeExact(state, pollfd, 1L, (int) Math.max(1, timeout.toMillis()));
            if (ready < 0 && (int) ERRNO.get(state, 0L) == EINTR) {
                return true;
            }
            check(ready, state, "poll");
            if (ready == 0 || (pollfd.get(ValueLayout.JAVA_SHORT, 6) & POLLIN) == 0) {
                return false;
            }
            MemorySegment buffer = arena.allocate(4096);
            long n = (long) READ.invokeExact(state, master, buffer, 4096L);
            if (n <= 0) {
                return false;
            }
            byte[] bytes = buffer.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
            unread.write(bytes);
            transcript.append(new String(bytes, StandardCharsets.UTF_8));
            return true;
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("poll/read", t);
        }
    }

    /** All the terminal showed so far, control characters escaped. */
    public String transcript() {
        return printable(transcript.toString());
    }

    private static String printable(String text) {
        StringBuilder shown = new StringBuilder();
        text.chars().forEach(c -> shown.append(c < 0x20 && c != '\n' ? String.format("\\x%02x", c) : (char) c));
        return shown.toString();
    }

    /** Closes the master and our slave descriptor, once. */
    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int slaveClosed = (int) CLOSE.invokeExact(state, slave);
            int masterClosed = (int) CLOSE.invokeExact(state, master);
            if (slaveClosed < 0 || masterClosed < 0) {
                throw new IOException("closing " + slavePath + " failed");
            }
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("close", t);
        }
    }

    private static int check(int result, MemorySegment state, String call) throws IOException {
        if (result < 0) {
            throw new IOException(call + " failed: errno " + (int) ERRNO.get(state, 0L));
        }
        return result;
    }

    private static MethodHandle function(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), descriptor,
                Linker.Option.captureCallState("errno"));
    }
}
