package org.shimmer.examples.cli.tty;

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
import java.util.Optional;
import org.shimmer.runtime.shim.TerminalSize;

/**
 * The terminal calls the JDK lacks, through FFM (the CLI has no native library of its own): {@code isatty},
 * {@code tcgetattr}/{@code tcsetattr}/{@code cfmakeraw} and the window size ({@code TIOCGWINSZ}). Saved attributes
 * are an opaque {@code struct termios} copy: the CLI restores exactly what it found, whatever the fields mean.
 */
// The CLI is launched with native access granted (--enable-native-access); this class is where it is used.
@SuppressWarnings("restricted")
public final class Termios {

    /** glibc's {@code struct termios} on Linux: 4 flag words, c_line, 32 control chars, 2 speeds (60 bytes). */
    static final long TERMIOS_SIZE = 60;
    /** Offset of {@code c_lflag}, the local modes (ICANON, ECHO, ISIG). */
    static final long C_LFLAG = 12;
    public static final int ICANON = 0x2;
    public static final int ECHO = 0x8;
    public static final int ISIG = 0x1;

    static final long TIOCGWINSZ = 0x5413;
    private static final int TCSANOW = 0;
    private static final int EINTR = 4;

    /** {@code struct winsize { unsigned short ws_row, ws_col, ws_xpixel, ws_ypixel; }}. */
    static final StructLayout WINSIZE = MemoryLayout.structLayout(
            ValueLayout.JAVA_SHORT.withName("ws_row"),
            ValueLayout.JAVA_SHORT.withName("ws_col"),
            ValueLayout.JAVA_SHORT.withName("ws_xpixel"),
            ValueLayout.JAVA_SHORT.withName("ws_ypixel"));
    static final VarHandle WS_ROW = WINSIZE.varHandle(MemoryLayout.PathElement.groupElement("ws_row"));
    static final VarHandle WS_COL = WINSIZE.varHandle(MemoryLayout.PathElement.groupElement("ws_col"));

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    private static final MethodHandle ISATTY = LINKER.downcallHandle(
            LINKER.defaultLookup().find("isatty").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle TCGETATTR = function("tcgetattr",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
    private static final MethodHandle TCSETATTR = function("tcsetattr",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                    ValueLayout.ADDRESS));
    private static final MethodHandle CFMAKERAW = LINKER.downcallHandle(
            LINKER.defaultLookup().find("cfmakeraw").orElseThrow(),
            FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));
    // ioctl is variadic after the request.
    private static final MethodHandle IOCTL = LINKER.downcallHandle(
            LINKER.defaultLookup().find("ioctl").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
                    ValueLayout.ADDRESS),
            CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));

    private Termios() {}

    /** Whether {@code fd} is a terminal. */
    public static boolean isatty(int fd) {
        try {
            return (int) ISATTY.invokeExact(fd) == 1;
        } catch (Throwable t) {
            throw new IllegalStateException("isatty(" + fd + ")", t);
        }
    }

    /** The terminal attributes of {@code fd}, as an opaque copy for {@link #set}. */
    public static byte[] get(int fd) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment termios = arena.allocate(TERMIOS_SIZE, 8);
            MemorySegment state = arena.allocate(CALL_STATE);
            check((int) TCGETATTR.invokeExact(state, fd, termios), state, "tcgetattr", fd);
            return termios.toArray(ValueLayout.JAVA_BYTE);
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("tcgetattr(" + fd + ")", t);
        }
    }

    /** Sets {@code fd}'s attributes to {@code saved} (from {@link #get}) at once, retrying on EINTR. */
    public static void set(int fd, byte[] saved) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment termios = arena.allocate(TERMIOS_SIZE, 8);
            termios.copyFrom(MemorySegment.ofArray(saved));
            MemorySegment state = arena.allocate(CALL_STATE);
            int result;
            do {
                result = (int) TCSETATTR.invokeExact(state, fd, TCSANOW, termios);
            } while (result < 0 && (int) ERRNO.get(state, 0L) == EINTR);
            check(result, state, "tcsetattr", fd);
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("tcsetattr(" + fd + ")", t);
        }
    }

    /** {@code attributes} as {@code cfmakeraw} turns them: no echo, no line editing, no signals, no output mapping. */
    public static byte[] raw(byte[] attributes) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment termios = arena.allocate(TERMIOS_SIZE, 8);
            termios.copyFrom(MemorySegment.ofArray(attributes));
            CFMAKERAW.invokeExact(termios);
            return termios.toArray(ValueLayout.JAVA_BYTE);
        } catch (Throwable t) {
            throw new IllegalStateException("cfmakeraw", t);
        }
    }

    /** The local-mode flags ({@code c_lflag}) of saved attributes. */
    public static int localFlags(byte[] attributes) {
        return MemorySegment.ofArray(attributes).get(ValueLayout.JAVA_INT_UNALIGNED, C_LFLAG);
    }

    /** The window size of terminal {@code fd}, or empty when it is not a terminal or has no size set (0x0). */
    public static Optional<TerminalSize> windowSize(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment size = arena.allocate(WINSIZE);
            MemorySegment state = arena.allocate(CALL_STATE);
            if ((int) IOCTL.invokeExact(state, fd, TIOCGWINSZ, size) < 0) {
                return Optional.empty();
            }
            int columns = Short.toUnsignedInt((short) WS_COL.get(size, 0L));
            int rows = Short.toUnsignedInt((short) WS_ROW.get(size, 0L));
            return columns == 0 || rows == 0 ? Optional.empty() : Optional.of(new TerminalSize(columns, rows));
        } catch (Throwable t) {
            throw new IllegalStateException("ioctl(" + fd + ", TIOCGWINSZ)", t);
        }
    }

    private static void check(int result, MemorySegment state, String call, int fd) throws IOException {
        if (result < 0) {
            throw new IOException(call + "(" + fd + ") failed: errno " + (int) ERRNO.get(state, 0L));
        }
    }

    private static MethodHandle function(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), descriptor, CAPTURE_ERRNO);
    }
}
