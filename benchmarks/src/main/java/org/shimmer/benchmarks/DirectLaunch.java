package org.shimmer.benchmarks;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Runs a command the way the plugin runs runc: {@code posix_spawnp} from the calling thread (one
 * {@code clone(CLONE_VFORK)}, the program looked up on {@code PATH}), then {@code waitpid}. The JDK's
 * {@code ProcessBuilder} starts its {@code jspawnhelper} first, which then execs the program: about 1 ms more per
 * launch on this machine, which put the benchmark's own launcher into {@code runc run}'s and {@code ctr}'s figures
 * and not into the plugin's, whose runc commands are spawned directly.
 *
 * <p>Blocks its thread in native code: call it from platform threads (a virtual thread would pin its carrier).
 */
// Downcalls are restricted methods: the benchmarks' JVMs run with --enable-native-access=ALL-UNNAMED.
@SuppressWarnings("restricted")
final class DirectLaunch {

    /** What ran: its exit status (128 + signal when killed), and what it wrote on stdout and stderr. */
    record Result(int exit, String out, String err) {}

    private static final int O_RDWR = 2;
    private static final int O_CLOEXEC = 02000000;
    private static final int EINTR = 4;
    private static final short POSIX_SPAWN_SETSIGMASK = 0x08;
    /** glibc's posix_spawn_file_actions_t is 80 bytes, posix_spawnattr_t 336, sigset_t 128: room to spare. */
    private static final long FILE_ACTIONS_SIZE = 128;
    private static final long ATTRIBUTES_SIZE = 512;
    private static final long SIGSET_SIZE = 128;
    private static final int BUFFER = 8192;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final MethodHandle PIPE2 = errnoCall("pipe2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle OPEN = errnoCall("open",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle READ = errnoCall("read",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle WAITPID = errnoCall("waitpid",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle CLOSE = call("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle SPAWNP = call("posix_spawnp",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    private static final MethodHandle ACTIONS_INIT = call("posix_spawn_file_actions_init",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle ACTIONS_DUP2 = call("posix_spawn_file_actions_adddup2",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    private static final MethodHandle ACTIONS_CLOSE_FROM = call("posix_spawn_file_actions_addclosefrom_np",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle ACTIONS_DESTROY = call("posix_spawn_file_actions_destroy",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle ATTRIBUTES_INIT = call("posix_spawnattr_init",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle ATTRIBUTES_MASK = call("posix_spawnattr_setsigmask",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle ATTRIBUTES_FLAGS = call("posix_spawnattr_setflags",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_SHORT));
    private static final MethodHandle ATTRIBUTES_DESTROY = call("posix_spawnattr_destroy",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MemorySegment ENVIRON = LIBC.find("environ").orElseThrow().reinterpret(ADDRESS.byteSize());

    private DirectLaunch() {}

    /** Runs {@code command} with stdin from /dev/null; with {@code capture}, its stdout and stderr read from pipes,
     * else both go to /dev/null (a container that inherits them must not hold a pipe we read to its end). */
    static Result run(List<String> command, boolean capture) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int devNull = check(state, (int) OPEN.invokeExact(state, arena.allocateFrom("/dev/null"),
                    O_RDWR | O_CLOEXEC, 0), "open /dev/null");
            int[] out = capture ? pipe(arena, state) : new int[] {-1, devNull};
            int[] err = capture ? pipe(arena, state) : new int[] {-1, devNull};
            int pid;
            try {
                pid = spawn(arena, command, devNull, out[1], err[1]);
            } finally {
                // The child has its copies (or there is no child): ours of its ends must go, or no read ends.
                close(devNull);
                if (capture) {
                    close(out[1]);
                    close(err[1]);
                }
            }
            String printed = capture ? readAll(arena, state, out[0]) : "";
            String complained = capture ? readAll(arena, state, err[0]) : "";
            return new Result(await(arena, state, pid), printed, complained);
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    private static int spawn(Arena arena, List<String> command, int in, int out, int err) throws Throwable {
        MemorySegment actions = arena.allocate(FILE_ACTIONS_SIZE, 16);
        MemorySegment attributes = arena.allocate(ATTRIBUTES_SIZE, 16);
        // Zeroed: the empty set. The child starts with no signal blocked, whatever this thread blocks.
        MemorySegment mask = arena.allocate(SIGSET_SIZE, 16);
        require((int) ACTIONS_INIT.invokeExact(actions), "posix_spawn_file_actions_init");
        require((int) ATTRIBUTES_INIT.invokeExact(attributes), "posix_spawnattr_init");
        try {
            require((int) ACTIONS_DUP2.invokeExact(actions, in, 0), "adddup2");
            require((int) ACTIONS_DUP2.invokeExact(actions, out, 1), "adddup2");
            require((int) ACTIONS_DUP2.invokeExact(actions, err, 2), "adddup2");
            // None of the JVM's descriptors reaches the child, as none reaches runc from the plugin.
            require((int) ACTIONS_CLOSE_FROM.invokeExact(actions, 3), "addclosefrom_np");
            require((int) ATTRIBUTES_MASK.invokeExact(attributes, mask), "posix_spawnattr_setsigmask");
            require((int) ATTRIBUTES_FLAGS.invokeExact(attributes, POSIX_SPAWN_SETSIGMASK), "posix_spawnattr_setflags");
            MemorySegment argv = arena.allocate(ADDRESS, command.size() + 1);
            for (int i = 0; i < command.size(); i++) {
                argv.setAtIndex(ADDRESS, i, arena.allocateFrom(command.get(i)));
            }
            argv.setAtIndex(ADDRESS, command.size(), MemorySegment.NULL);
            MemorySegment pid = arena.allocate(JAVA_INT);
            int error = (int) SPAWNP.invokeExact(pid, argv.getAtIndex(ADDRESS, 0), actions, attributes, argv,
                    ENVIRON.get(ADDRESS, 0));
            if (error != 0) {
                throw new IllegalStateException("cannot run " + command.getFirst() + ": errno " + error);
            }
            return pid.get(JAVA_INT, 0);
        } finally {
            int ignored = (int) ATTRIBUTES_DESTROY.invokeExact(attributes);
            ignored = (int) ACTIONS_DESTROY.invokeExact(actions);
        }
    }

    private static int[] pipe(Arena arena, MemorySegment state) throws Throwable {
        MemorySegment fds = arena.allocate(JAVA_INT, 2);
        check(state, (int) PIPE2.invokeExact(state, fds, O_CLOEXEC), "pipe2");
        return new int[] {fds.getAtIndex(JAVA_INT, 0), fds.getAtIndex(JAVA_INT, 1)};
    }

    /** Reads {@code fd} to its end and closes it. */
    private static String readAll(Arena arena, MemorySegment state, int fd) throws Throwable {
        MemorySegment buffer = arena.allocate(BUFFER);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try {
            while (true) {
                long read = (long) READ.invokeExact(state, fd, buffer, (long) BUFFER);
                if (read == 0) {
                    return bytes.toString(StandardCharsets.UTF_8);
                }
                if (read < 0) {
                    if ((int) ERRNO.get(state, 0L) == EINTR) {
                        continue;
                    }
                    throw new IllegalStateException("read: errno " + ERRNO.get(state, 0L));
                }
                bytes.write(buffer.asSlice(0, read).toArray(JAVA_BYTE));
            }
        } finally {
            close(fd);
        }
    }

    private static int await(Arena arena, MemorySegment state, int pid) throws Throwable {
        MemorySegment status = arena.allocate(JAVA_INT);
        while (true) {
            int reaped = (int) WAITPID.invokeExact(state, pid, status, 0);
            if (reaped == pid) {
                int raw = status.get(JAVA_INT, 0);
                int signal = raw & 0x7f;
                return signal == 0 ? (raw >> 8) & 0xff : 128 + signal;
            }
            if (reaped != -1 || (int) ERRNO.get(state, 0L) != EINTR) {
                throw new IllegalStateException("waitpid(" + pid + "): errno " + ERRNO.get(state, 0L));
            }
        }
    }

    private static void close(int fd) throws Throwable {
        int ignored = (int) CLOSE.invokeExact(fd);
    }

    private static int check(MemorySegment state, int result, String what) {
        if (result < 0) {
            throw new IllegalStateException(what + ": errno " + ERRNO.get(state, 0L));
        }
        return result;
    }

    /** posix_spawn's helpers return an error number, not -1 and errno. */
    private static void require(int error, String what) {
        if (error != 0) {
            throw new IllegalStateException(what + ": errno " + error);
        }
    }

    private static MethodHandle call(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(LIBC.find(name).orElseThrow(), descriptor);
    }

    private static MethodHandle errnoCall(String name, FunctionDescriptor descriptor, Linker.Option... more) {
        Linker.Option[] options = new Linker.Option[more.length + 1];
        options[0] = Linker.Option.captureCallState("errno");
        System.arraycopy(more, 0, options, 1, more.length);
        return LINKER.downcallHandle(LIBC.find(name).orElseThrow(), descriptor, options);
    }
}
