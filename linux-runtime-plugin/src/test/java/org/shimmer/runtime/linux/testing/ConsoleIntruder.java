package org.shimmer.runtime.linux.testing;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * Another process's part on a console socket (x86-64 Linux, through FFM): a pseudo-terminal master of its own,
 * passed with {@code SCM_RIGHTS} as runc passes the one it made, so that a test can see whose terminal is taken.
 */
@SuppressWarnings("restricted")
public final class ConsoleIntruder {

    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle OPEN = function("open", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle SOCKET = function("socket", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle CONNECT = function("connect", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle SENDMSG = function("sendmsg", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle CLOSE = function("close", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT));
    private static final int O_RDWR = 02;
    private static final int O_NOCTTY = 0400;
    private static final int O_CLOEXEC = 02000000;
    private static final int AF_UNIX = 1;
    private static final int SOCK_STREAM = 1;
    private static final int SOCK_CLOEXEC = 02000000;
    private static final int SOL_SOCKET = 1;
    private static final int SCM_RIGHTS = 1;
    private static final int SOCKADDR_UN_SIZE = 110;
    private static final int MSGHDR_SIZE = 56;
    /** {@code CMSG_SPACE(sizeof(int))} and {@code CMSG_LEN(sizeof(int))}. */
    private static final int CMSG_SPACE = 24;
    private static final int CMSG_LEN = 20;

    private ConsoleIntruder() {}

    /**
     * Connects to {@code socket} and passes it a master of a new pseudo-terminal; the connection and our copy of
     * the master are closed before this returns (what was passed stays queued for whoever accepts).
     */
    public static void passATerminalOfItsOwn(Path socket) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            int master = check((int) OPEN.invokeExact(arena.allocateFrom("/dev/ptmx"),
                    O_RDWR | O_NOCTTY | O_CLOEXEC), "open /dev/ptmx");
            int connection = -1;
            try {
                connection = check((int) SOCKET.invokeExact(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
                byte[] name = socket.toString().getBytes(StandardCharsets.UTF_8);
                MemorySegment address = arena.allocate(SOCKADDR_UN_SIZE, 2);
                address.set(ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
                MemorySegment.copy(name, 0, address, ValueLayout.JAVA_BYTE, 2, name.length);
                check((int) CONNECT.invokeExact(connection, address, SOCKADDR_UN_SIZE), "connect " + socket);
                MemorySegment data = arena.allocateFrom("x");
                MemorySegment iov = arena.allocate(16, 8);
                iov.set(ValueLayout.ADDRESS, 0, data);
                iov.set(ValueLayout.JAVA_LONG, 8, 1);
                MemorySegment control = arena.allocate(CMSG_SPACE, 8);
                control.set(ValueLayout.JAVA_LONG, 0, CMSG_LEN);
                control.set(ValueLayout.JAVA_INT, 8, SOL_SOCKET);
                control.set(ValueLayout.JAVA_INT, 12, SCM_RIGHTS);
                control.set(ValueLayout.JAVA_INT, 16, master);
                MemorySegment message = arena.allocate(MSGHDR_SIZE, 8);
                message.set(ValueLayout.ADDRESS, 16, iov);
                message.set(ValueLayout.JAVA_LONG, 24, 1);
                message.set(ValueLayout.ADDRESS, 32, control);
                message.set(ValueLayout.JAVA_LONG, 40, CMSG_SPACE);
                if ((long) SENDMSG.invokeExact(connection, message, 0) != 1) {
                    throw new IOException("sendmsg on " + socket + " failed");
                }
            } finally {
                if (connection >= 0) {
                    int ignored = (int) CLOSE.invokeExact(connection);
                }
                int ignored = (int) CLOSE.invokeExact(master);
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static int check(int result, String call) throws IOException {
        if (result < 0) {
            throw new IOException(call + " failed");
        }
        return result;
    }

    private static MethodHandle function(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), descriptor);
    }
}
