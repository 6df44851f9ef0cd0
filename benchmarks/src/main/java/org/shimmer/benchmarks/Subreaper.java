package org.shimmer.benchmarks;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * This JVM as a child subreaper, waiting for a container's init the way a shim does: once {@code runc create} has
 * exited, init is re-parented here, and {@code waitpid} returns when it ends, without a process per look (a
 * {@code runc state} loop costs a runc process, several ms, on the measured path of a "floor").
 */
// Downcalls are restricted methods: the benchmarks' JVMs run with --enable-native-access=ALL-UNNAMED.
@SuppressWarnings("restricted")
final class Subreaper {

    private static final int PR_SET_CHILD_SUBREAPER = 36;
    private static final int EINTR = 4;
    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(
            MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");
    private static final MethodHandle PRCTL = LINKER.downcallHandle(
            LINKER.defaultLookup().find("prctl").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG), Linker.Option.firstVariadicArg(1), CAPTURE_ERRNO);
    private static final MethodHandle WAITPID = LINKER.downcallHandle(
            LINKER.defaultLookup().find("waitpid").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT),
            CAPTURE_ERRNO);

    private Subreaper() {}

    /** Makes this JVM a child subreaper (process-wide, for good: the plugin's local shim sets it too). */
    static void become() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            if ((int) PRCTL.invokeExact(state, PR_SET_CHILD_SUBREAPER, 1L) != 0) {
                throw new IllegalStateException("prctl(PR_SET_CHILD_SUBREAPER): errno " + ERRNO.get(state, 0L));
            }
        } catch (Throwable e) {
            throw e instanceof RuntimeException runtime ? runtime : new IllegalStateException(e);
        }
    }

    /**
     * Waits for {@code pid}, a child of this JVM (a container's init re-parented here), reaps it and returns its
     * exit status, or 128 + the signal that ended it.
     */
    static int awaitExit(int pid) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment status = arena.allocate(JAVA_INT);
            while (true) {
                int reaped = (int) WAITPID.invokeExact(state, pid, status, 0);
                if (reaped == pid) {
                    int raw = status.get(JAVA_INT, 0);
                    int signal = raw & 0x7f;
                    return signal == 0 ? (raw >> 8) & 0xff : 128 + signal;
                }
                int errno = (int) ERRNO.get(state, 0L);
                if (reaped != -1 || errno != EINTR) {
                    throw new IllegalStateException("waitpid(" + pid + "): " + reaped + ", errno " + errno
                            + " (not a child of this JVM?)");
                }
            }
        } catch (Throwable e) {
            throw e instanceof RuntimeException runtime ? runtime : new IllegalStateException(e);
        }
    }
}
