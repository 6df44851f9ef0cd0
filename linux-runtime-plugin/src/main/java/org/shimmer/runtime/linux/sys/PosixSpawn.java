package org.shimmer.runtime.linux.sys;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The C library's {@code posix_spawnp}: a child started from the calling thread with one {@code clone(CLONE_VFORK)}
 * and one {@code exec}. The JDK's {@code ProcessBuilder} spawns its {@code jspawnhelper} first, which then execs
 * the program: two execs and a pipe handshake, about 1 ms of wall time per process here against 0.2 ms, and most
 * of the JVM's CPU per runc command in a burst (issue 14).
 *
 * <p>The child gets exactly descriptors 0, 1 and 2 (everything else is closed by
 * {@code posix_spawn_file_actions_addclosefrom_np}, glibc 2.34, so no descriptor of the JVM leaks into it whether
 * or not it was opened close-on-exec), an empty signal mask (a JVM thread may block signals a child must see), and
 * the environment of the process ({@code environ}). Signal handlers the JVM installed are reset by the exec, as for
 * the JDK's children.
 */
@SuppressWarnings("restricted")
final class PosixSpawn {

    /** glibc's {@code posix_spawn_file_actions_t} is 80 bytes and {@code posix_spawnattr_t} 336; room to spare. */
    private static final long FILE_ACTIONS_SIZE = 256;
    private static final long ATTRIBUTES_SIZE = 1024;
    private static final long SIGSET_SIZE = 128;
    private static final short POSIX_SPAWN_SETSIGMASK = 0x08;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();

    /** Whether this C library can spawn as described (glibc 2.34 or later); else the JDK's launch is used. */
    static final boolean AVAILABLE = LIBC.find("posix_spawn_file_actions_addclosefrom_np").isPresent()
            && LIBC.find("posix_spawn_file_actions_addchdir_np").isPresent() && LIBC.find("environ").isPresent();

    private static final MethodHandle SPAWNP = link("posix_spawnp", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
            ValueLayout.ADDRESS));
    private static final MethodHandle ACTIONS_INIT = link("posix_spawn_file_actions_init",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
    private static final MethodHandle ACTIONS_DUP2 = link("posix_spawn_file_actions_adddup2",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT));
    private static final MethodHandle ACTIONS_CLOSE_FROM = link("posix_spawn_file_actions_addclosefrom_np",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle ACTIONS_CHDIR = link("posix_spawn_file_actions_addchdir_np",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
    private static final MethodHandle ACTIONS_DESTROY = link("posix_spawn_file_actions_destroy",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
    private static final MethodHandle ATTRIBUTES_INIT = link("posix_spawnattr_init",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
    private static final MethodHandle ATTRIBUTES_FLAGS = link("posix_spawnattr_setflags",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_SHORT));
    private static final MethodHandle ATTRIBUTES_MASK = link("posix_spawnattr_setsigmask",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
    private static final MethodHandle ATTRIBUTES_DESTROY = link("posix_spawnattr_destroy",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
    private static final MethodHandle SIGEMPTYSET = link("sigemptyset",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));

    static {
        // The JDK's process class puts SIGCHLD back to its default when it initialises: a JVM started with SIGCHLD
        // ignored has its children reaped by the kernel, and no exit status could be read. Our own children need
        // the same (review: every command of a remote-only runtime "failed" with exit 255 then).
        try {
            Class.forName("java.lang.ProcessImpl", true, null);
        } catch (ClassNotFoundException | LinkageError e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private PosixSpawn() {}

    /**
     * Starts {@code command} (its first word looked up on {@code PATH}) with {@code stdio[i]} as its descriptor
     * {@code i}, in {@code directory} (null: ours), with our environment and {@code environment} set over it;
     * returns its pid. The descriptors stay the caller's to close.
     */
    static int spawn(List<String> command, int[] stdio, Path directory, Map<String, String> environment)
            throws IOException {
        if (!AVAILABLE) {
            throw new IllegalStateException("posix_spawn with addclosefrom_np is not available");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment actions = arena.allocate(FILE_ACTIONS_SIZE, 16);
            MemorySegment attributes = arena.allocate(ATTRIBUTES_SIZE, 16);
            MemorySegment mask = arena.allocate(SIGSET_SIZE, 16);
            require((int) ACTIONS_INIT.invokeExact(actions), "posix_spawn_file_actions_init");
            try {
                require((int) ATTRIBUTES_INIT.invokeExact(attributes), "posix_spawnattr_init");
                try {
                    for (int target = 0; target < stdio.length; target++) {
                        require((int) ACTIONS_DUP2.invokeExact(actions, stdio[target], target),
                                "posix_spawn_file_actions_adddup2");
                    }
                    require((int) ACTIONS_CLOSE_FROM.invokeExact(actions, stdio.length),
                            "posix_spawn_file_actions_addclosefrom_np");
                    if (directory != null) {
                        require((int) ACTIONS_CHDIR.invokeExact(actions, arena.allocateFrom(directory.toString())),
                                "posix_spawn_file_actions_addchdir_np");
                    }
                    int emptied = (int) SIGEMPTYSET.invokeExact(mask);
                    if (emptied != 0) {
                        throw new IOException("sigemptyset failed");
                    }
                    require((int) ATTRIBUTES_MASK.invokeExact(attributes, mask), "posix_spawnattr_setsigmask");
                    require((int) ATTRIBUTES_FLAGS.invokeExact(attributes, POSIX_SPAWN_SETSIGMASK),
                            "posix_spawnattr_setflags");
                    MemorySegment argv = strings(arena, command);
                    MemorySegment pid = arena.allocate(ValueLayout.JAVA_INT);
                    // Read at each spawn: the variable moves when the environment grows.
                    MemorySegment envp = environment(arena, environment);
                    int error = (int) SPAWNP.invokeExact(pid, argv.getAtIndex(ValueLayout.ADDRESS, 0), actions,
                            attributes, argv, envp);
                    if (error != 0) {
                        throw new LinuxCalls.ErrnoException("cannot run program \"" + command.getFirst() + "\"",
                                error);
                    }
                    return pid.get(ValueLayout.JAVA_INT, 0);
                } finally {
                    int ignored = (int) ATTRIBUTES_DESTROY.invokeExact(attributes);
                }
            } finally {
                int ignored = (int) ACTIONS_DESTROY.invokeExact(actions);
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** A NULL-terminated array of C strings. */
    private static MemorySegment strings(Arena arena, List<String> strings) {
        MemorySegment array = arena.allocate(ValueLayout.ADDRESS, strings.size() + 1L);
        for (int i = 0; i < strings.size(); i++) {
            array.setAtIndex(ValueLayout.ADDRESS, i, arena.allocateFrom(strings.get(i)));
        }
        array.setAtIndex(ValueLayout.ADDRESS, strings.size(), MemorySegment.NULL);
        return array;
    }

    /**
     * Ours ({@code environ}) when nothing is set over it, as the JDK passes it; else, as the JDK does too, the
     * entries of the environment the JVM started with (copied once, their bytes untouched, whatever their encoding)
     * other than those set, and the set ones. The live array is not walked then: a {@code setenv} in another
     * thread may free it under us.
     */
    private static MemorySegment environment(Arena arena, Map<String, String> overrides) {
        MemorySegment ours = environ().get(ValueLayout.ADDRESS, 0);
        if (overrides.isEmpty() && !ours.equals(MemorySegment.NULL)) {
            return ours;
        }
        List<MemorySegment> entries = new ArrayList<>();
        for (StartEnvironment.Entry entry : StartEnvironment.ENTRIES) {
            if (!overrides.containsKey(entry.name())) {
                entries.add(entry.string());
            }
        }
        overrides.forEach((name, value) -> entries.add(arena.allocateFrom(name + "=" + value)));
        MemorySegment envp = arena.allocate(ValueLayout.ADDRESS, entries.size() + 1L);
        for (int i = 0; i < entries.size(); i++) {
            envp.setAtIndex(ValueLayout.ADDRESS, i, entries.get(i));
        }
        envp.setAtIndex(ValueLayout.ADDRESS, entries.size(), MemorySegment.NULL);
        return envp;
    }

    /** The environment the JVM started with, copied at the first spawn that sets a variable; never freed. */
    private static final class StartEnvironment {

        record Entry(String name, MemorySegment string) {}

        static final List<Entry> ENTRIES = copy();

        private static List<Entry> copy() {
            // Automatic: freed with this class when a reloaded plugin's class loader goes.
            Arena arena = Arena.ofAuto();
            MemorySegment array = environ().get(ValueLayout.ADDRESS, 0);
            List<Entry> entries = new ArrayList<>();
            if (array.equals(MemorySegment.NULL)) {
                return entries;
            }
            array = array.reinterpret(Long.MAX_VALUE);
            for (long i = 0; ; i++) {
                MemorySegment entry = array.getAtIndex(ValueLayout.ADDRESS, i);
                if (entry.equals(MemorySegment.NULL)) {
                    return List.copyOf(entries);
                }
                MemorySegment string = entry.reinterpret(Long.MAX_VALUE);
                long length = 0;
                while (string.get(ValueLayout.JAVA_BYTE, length) != 0) {
                    length++;
                }
                MemorySegment copy = arena.allocate(length + 1);
                MemorySegment.copy(string, 0, copy, 0, length + 1);
                String text = copy.getString(0);
                int equals = text.indexOf('=');
                entries.add(new Entry(equals < 0 ? text : text.substring(0, equals), copy));
            }
        }
    }

    private static MemorySegment environ() {
        return LIBC.find("environ").orElseThrow().reinterpret(ValueLayout.ADDRESS.byteSize());
    }

    /** posix_spawn's helpers return an error number (not -1 and errno). */
    private static void require(int error, String call) throws IOException {
        if (error != 0) {
            throw new LinuxCalls.ErrnoException(call, error);
        }
    }

    private static MethodHandle link(String name, FunctionDescriptor descriptor) {
        Optional<MemorySegment> symbol = LIBC.find(name);
        return symbol.map(address -> LINKER.downcallHandle(address, descriptor)).orElse(null);
    }
}
