package org.shimmer.runtime.linux.sys;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * What {@code /proc} says of other processes. Every answer is a snapshot: a pid may exit, or be reused, right after;
 * callers that act on a process hold a pidfd opened before they recognised it.
 */
public final class Procfs {

    private static final Path PROC = Path.of("/proc");

    private Procfs() {}

    /** Every pid now. */
    public static int[] pids() throws IOException {
        int proc = LinuxCalls.open(PROC, LinuxCalls.O_RDONLY | LinuxCalls.O_DIRECTORY | LinuxCalls.O_CLOEXEC);
        try {
            return LinuxCalls.numberedEntries(proc);
        } finally {
            LinuxCalls.close(proc);
        }
    }

    /** PF_KTHREAD in the flags of {@code stat}: a kernel thread, which runs no program. */
    private static final long PF_KTHREAD = 0x00200000L;
    /** Whether pid 2 is kthreadd, read once: it never exits, and where it is not (a pid namespace) it never is. */
    private static volatile Boolean kthreaddVisible;

    /**
     * The kernel's own processes now: kthreadd (pid 2) and its children, which are every kernel thread (none runs a
     * program) and the user-mode helpers the kernel is running at that moment ({@code modprobe}, a
     * {@code core_pattern} pipe), programs of the kernel's, never a shim, runc or a container's process. Empty
     * where pid 2 is not kthreadd (in a pid namespace of its own, pid 2 is anyone, and kernel threads are not
     * shown). A process that lives from before this call to after it is among them only if the kernel started it.
     * Every scan of {@code /proc} opened the command line of each kernel thread (60 of 83 processes here).
     */
    public static int[] kernelThreads() {
        if (!isKthreaddVisible()) {
            return new int[0];
        }
        try {
            // Parsed from the bytes, without a string per pid: every bundle delete's scan reads this file.
            byte[] listed = Files.readAllBytes(PROC.resolve("2/task/2/children"));
            int[] pids = new int[listed.length / 2 + 2];
            int count = 0;
            pids[count++] = 2;
            long pid = -1;
            for (byte c : listed) {
                if (c >= '0' && c <= '9') {
                    pid = (pid < 0 ? 0 : pid * 10) + (c - '0');
                    if (pid > Integer.MAX_VALUE) {
                        return new int[0];
                    }
                } else if (pid >= 0) {
                    pids[count++] = (int) pid;
                    pid = -1;
                }
            }
            if (pid >= 0) {
                pids[count++] = (int) pid;
            }
            int[] sorted = Arrays.copyOf(pids, count);
            Arrays.sort(sorted);
            return sorted;
        } catch (IOException | RuntimeException unreadable) {
            // No children file (a kernel without it): every process is read, as before.
            return new int[0];
        }
    }

    private static boolean isKthreaddVisible() {
        Boolean visible = kthreaddVisible;
        if (visible == null) {
            String[] stat = stat(2);
            // flags is the 9th field of stat, the 7th after the name.
            visible = stat.length > 6 && !stat[6].isEmpty() && stat[6].chars().allMatch(Procfs::isDigit)
                    && (Long.parseLong(stat[6]) & PF_KTHREAD) != 0;
            kthreaddVisible = visible;
        }
        return visible;
    }

    private static boolean isDigit(int c) {
        return c >= '0' && c <= '9';
    }

    /**
     * The pids of the children this process adopted, and of those its main thread forked: {@code
     * /proc/self/task/<tid>/children} of the main thread. The kernel hands an orphan to the first live thread of
     * the subreaper (the main thread, while it lives), and a thread's children to the first live thread of its
     * process when it ends; a child another thread forked and still has is left out (the JDK's, which are
     * never ours to reap). Once the main thread has ended, every thread's file is read. One file, not one per
     * thread: a JVM has dozens, and reading all of them took about 4 ms here (79 threads).
     */
    public static List<Integer> adoptedChildren() throws IOException {
        Path leader = PROC.resolve("self").resolve("task").resolve(Long.toString(ProcessHandle.current().pid()));
        if (isLive(leader)) {
            return children(leader);
        }
        List<Integer> children = new ArrayList<>();
        try (DirectoryStream<Path> tasks = Files.newDirectoryStream(PROC.resolve("self").resolve("task"))) {
            for (Path task : tasks) {
                try {
                    children.addAll(children(task));
                } catch (IOException gone) {
                    // The thread ended while we read; its children moved to one we read or will read.
                }
            }
        }
        return children;
    }

    /**
     * The descendants of {@code pid} now, children first: {@code /proc/<pid>/task/<tid>/children} of each of its
     * threads, then theirs. Processes that exit meanwhile are left out.
     */
    public static List<Integer> descendants(int pid) {
        List<Integer> found = new ArrayList<>();
        java.util.ArrayDeque<Integer> pending = new java.util.ArrayDeque<>(List.of(pid));
        while (!pending.isEmpty()) {
            Path tasks = PROC.resolve(Integer.toString(pending.poll())).resolve("task");
            try (DirectoryStream<Path> threads = Files.newDirectoryStream(tasks)) {
                for (Path thread : threads) {
                    try {
                        for (int child : children(thread)) {
                            found.add(child);
                            pending.add(child);
                        }
                    } catch (IOException gone) {
                        // The thread ended while we read.
                    }
                }
            } catch (IOException | java.nio.file.DirectoryIteratorException gone) {
                // The process ended while we read.
            }
        }
        return found;
    }

    private static List<Integer> children(Path task) throws IOException {
        List<Integer> children = new ArrayList<>();
        for (String pid : Files.readString(task.resolve("children")).strip().split(" ")) {
            if (!pid.isEmpty()) {
                children.add(Integer.parseInt(pid));
            }
        }
        return children;
    }

    /** The command line; empty for a zombie or a kernel thread. */
    public static List<String> argv(int pid) throws IOException {
        return argv(cmdline(pid));
    }

    /** The raw command line, NUL-separated arguments; empty for a zombie or a kernel thread. */
    public static byte[] cmdline(int pid) throws IOException {
        return Files.readAllBytes(entry(pid).resolve("cmdline"));
    }

    /**
     * Reads the command lines of many processes, one after another on one thread, through one descriptor of
     * {@code /proc} and one native buffer: every bundle delete scans every process, and a FileInputStream per pid
     * (a String path, a cleaner, a read past the end) took a fifth more (0.85 against 0.68 ms for 67 processes
     * here, most of either the system calls themselves). Confined to the thread that made it.
     */
    public static final class CommandLines implements AutoCloseable {

        /** {@code <pid>/cmdline} and its NUL: a pid has at most 7 digits. */
        private static final int NAME_ROOM = 32;
        private static final byte[] CMDLINE = "/cmdline".getBytes(StandardCharsets.US_ASCII);

        private final Arena arena = Arena.ofConfined();
        private final MemorySegment state = LinuxCalls.allocateCallState(arena);
        private final MemorySegment name = arena.allocate(NAME_ROOM);
        private final MemorySegment data;
        private final int proc;
        private boolean closed;

        /** A reader of command lines up to {@code capacity} bytes. */
        public CommandLines(int capacity) throws IOException {
            try {
                data = arena.allocate(capacity);
                proc = LinuxCalls.open(PROC, LinuxCalls.O_RDONLY | LinuxCalls.O_DIRECTORY | LinuxCalls.O_CLOEXEC);
            } catch (IOException | RuntimeException e) {
                arena.close();
                throw e;
            }
        }

        /**
         * {@code pid}'s raw command line into {@code buffer} (at most the capacity): its length, or -1 when it
         * fills the buffer and may be longer. Empty for a zombie or a kernel thread.
         *
         * @throws IOException when there is no such process (it exited), or it cannot be read
         */
        public int read(int pid, byte[] buffer) throws IOException {
            long end = 0;
            String digits = Integer.toString(pid);
            for (int i = 0; i < digits.length(); i++) {
                name.set(ValueLayout.JAVA_BYTE, end++, (byte) digits.charAt(i));
            }
            MemorySegment.copy(CMDLINE, 0, name, ValueLayout.JAVA_BYTE, end, CMDLINE.length);
            name.set(ValueLayout.JAVA_BYTE, end + CMDLINE.length, (byte) 0);
            int fd = LinuxCalls.openat(proc, name, LinuxCalls.O_RDONLY | LinuxCalls.O_CLOEXEC, state);
            if (fd < 0) {
                throw new LinuxCalls.ErrnoException("open /proc/" + pid + "/cmdline", LinuxCalls.errno(state));
            }
            int limit = Math.min(buffer.length, (int) data.byteSize());
            int length = 0;
            try {
                // The kernel hands a command line out a page at a time: read until the end or the buffer is full.
                while (length < limit) {
                    long n = LinuxCalls.read(fd, data.asSlice(length, limit - length), state);
                    if (n == 0) {
                        break;
                    }
                    // -1: interrupted by a signal before anything was read; again.
                    length += (int) Math.max(n, 0);
                }
            } finally {
                LinuxCalls.close(fd, state);
            }
            MemorySegment.copy(data, ValueLayout.JAVA_BYTE, 0, buffer, 0, length);
            return length < limit ? length : -1;
        }

        /** Closes the /proc descriptor once: a second close could close a number the kernel gave out again. */
        @Override
        public void close() {
            if (closed) {
                return;
            }
            closed = true;
            LinuxCalls.close(proc, state);
            arena.close();
        }
    }

    /** The arguments of a raw {@link #cmdline(int)}. */
    public static List<String> argv(byte[] cmdline) {
        String raw = new String(cmdline, StandardCharsets.UTF_8);
        return raw.isEmpty() ? List.of() : List.of(raw.split("\0"));
    }

    /** Whether its environment holds exactly {@code variable} ({@code NAME=value}). */
    public static boolean hasEnvironment(int pid, String variable) throws IOException {
        return Arrays.asList(new String(Files.readAllBytes(entry(pid).resolve("environ")), StandardCharsets.UTF_8)
                .split("\0")).contains(variable);
    }

    /** Whether its working directory is {@code dir}: the same file, whatever symlinks lead to either. */
    public static boolean inDirectory(int pid, Path dir) {
        try {
            return Files.isSameFile(entry(pid).resolve("cwd"), dir);
        } catch (IOException | SecurityException unreadable) {
            return false;
        }
    }

    /** Exists and is not a zombie. */
    public static boolean isLive(int pid) {
        return isLive(entry(pid));
    }

    private static boolean isLive(Path entry) {
        String[] stat = stat(entry);
        return stat.length > 0 && !stat[0].equals("Z") && !stat[0].equals("X");
    }

    /** Its parent's pid, or -1 when it is gone. */
    public static long parentPid(int pid) {
        String[] stat = stat(pid);
        return stat.length > 1 ? Long.parseLong(stat[1]) : -1;
    }

    /**
     * When it started, in clock ticks after boot (the 22nd field of {@code stat}; a zombie keeps it until it is
     * reaped), or -1 when it is gone: with the pid, what names one process for good.
     */
    public static long startTicks(int pid) {
        String[] stat = stat(pid);
        return stat.length > 19 ? Long.parseLong(stat[19]) : -1;
    }

    /** Its process group's id (a zombie keeps it until it is reaped), or -1 when it is gone. */
    public static int processGroupId(int pid) {
        String[] stat = stat(pid);
        return stat.length > 2 ? Integer.parseInt(stat[2]) : -1;
    }

    /** Its session's id (a zombie keeps it until it is reaped), or -1 when it is gone. */
    public static int sessionId(int pid) {
        String[] stat = stat(pid);
        return stat.length > 3 ? Integer.parseInt(stat[3]) : -1;
    }

    /** The fields of {@code stat} after the parenthesised command name (state, ppid, …); empty when gone. */
    private static String[] stat(int pid) {
        return stat(entry(pid));
    }

    private static String[] stat(Path entry) {
        try {
            String stat = Files.readString(entry.resolve("stat"));
            return stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        } catch (IOException | RuntimeException gone) {
            return new String[0];
        }
    }

    private static Path entry(int pid) {
        return PROC.resolve(Integer.toString(pid));
    }
}
