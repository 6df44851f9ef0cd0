package org.shimmer.runtime.linux.sys;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodType;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The few Linux calls the JDK lacks, through the Foreign Function & Memory API (no JNI, no native library of
 * ours): FIFOs, raw descriptors, {@code poll}, {@code eventfd}, {@code prctl}, pidfds, {@code waitid}, signals
 * and mounts. Every call reports failure as an {@link IOException} naming the call, the path or descriptor, and
 * {@code errno}'s meaning. A descriptor a call returns is owned by one {@link OwnedFd} (reads and writes go only
 * through it), so its number is never used after it was closed.
 */
// Downcalls are restricted methods by design: this class is where the plugin asks for them (the host grants
// --enable-native-access), so javac's per-call notice says nothing new here.
@SuppressWarnings("restricted")
public final class LinuxCalls {

    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 1;
    public static final int O_RDWR = 2;
    public static final int O_NONBLOCK = 04000;
    public static final int O_CLOEXEC = 02000000;

    public static final short POLLIN = 0x001;
    public static final short POLLOUT = 0x004;
    public static final short POLLERR = 0x008;
    public static final short POLLHUP = 0x010;
    public static final short POLLNVAL = 0x020;

    public static final int ESRCH = 3;
    public static final int EINTR = 4;
    public static final int EAGAIN = 11;
    public static final int EEXIST = 17;
    public static final int ENXIO = 6;

    private static final int EFD_NONBLOCK = 04000;
    private static final int EFD_CLOEXEC = 02000000;

    /** {@code struct pollfd { int fd; short events; short revents; }}. */
    public static final StructLayout POLLFD = MemoryLayout.structLayout(
            ValueLayout.JAVA_INT.withName("fd"),
            ValueLayout.JAVA_SHORT.withName("events"),
            ValueLayout.JAVA_SHORT.withName("revents"));

    private static final VarHandle POLLFD_FD = POLLFD.varHandle(MemoryLayout.PathElement.groupElement("fd"));
    private static final VarHandle POLLFD_EVENTS = POLLFD.varHandle(MemoryLayout.PathElement.groupElement("events"));
    private static final VarHandle POLLFD_REVENTS =
            POLLFD.varHandle(MemoryLayout.PathElement.groupElement("revents"));

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    private static final MethodHandle MKFIFO = function("mkfifo",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle OPEN = function("open",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle READ = function("read",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG));
    private static final MethodHandle WRITE = function("write",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG));
    private static final MethodHandle CLOSE = function("close",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle POLL = function("poll",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_INT));
    private static final MethodHandle EVENTFD = function("eventfd",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle PRCTL = downcall("prctl",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG),
            CAPTURE_ERRNO, Linker.Option.firstVariadicArg(1));
    // glibc's syscall() is variadic after the number.
    private static final MethodHandle SYSCALL_2 = downcall("syscall",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT),
            CAPTURE_ERRNO, Linker.Option.firstVariadicArg(1));
    private static final MethodHandle SYSCALL_4 = downcall("syscall",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT),
            CAPTURE_ERRNO, Linker.Option.firstVariadicArg(1));
    private static final MethodHandle WAITID = function("waitid",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle KILL = function("kill",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle MOUNT = function("mount",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
    private static final MethodHandle UMOUNT2 = function("umount2",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle STRERROR = downcall("strerror",
            FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_INT));

    private LinuxCalls() {}

    /** A failed call; {@link #errno()} says why. */
    public static final class ErrnoException extends IOException {
        private final int errno;

        ErrnoException(String call, int errno) {
            super(call + ": " + describe(errno) + " (errno " + errno + ")");
            this.errno = errno;
        }

        public int errno() {
            return errno;
        }
    }

    /** {@code mkfifo(path, mode)}. */
    public static void mkfifo(Path path, int mode) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int result = (int) MKFIFO.invokeExact(state, arena.allocateFrom(path.toString()), mode);
            check(result, state, "mkfifo " + path);
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** {@code open(path, flags)}; returns the descriptor. */
    public static int open(Path path, int flags) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int fd = (int) OPEN.invokeExact(state, arena.allocateFrom(path.toString()), flags);
            check(fd, state, "open " + path);
            return fd;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * {@code read(fd, buffer, length)}: the bytes read, 0 at end of file, or -1 when a non-blocking descriptor has
     * nothing now ({@code EAGAIN}).
     */
    static long read(int fd, MemorySegment buffer, MemorySegment state) throws IOException {
        try {
            long n = (long) READ.invokeExact(state, fd, buffer, buffer.byteSize());
            if (n < 0) {
                int errno = (int) ERRNO.get(state, 0L);
                if (errno == EAGAIN || errno == EINTR) {
                    return -1;
                }
                throw new ErrnoException("read fd " + fd, errno);
            }
            return n;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** {@code write(fd, buffer, length)}: the bytes written, or -1 when a non-blocking descriptor is full. */
    static long write(int fd, MemorySegment buffer, MemorySegment state) throws IOException {
        try {
            long n = (long) WRITE.invokeExact(state, fd, buffer, buffer.byteSize());
            if (n < 0) {
                int errno = (int) ERRNO.get(state, 0L);
                if (errno == EAGAIN || errno == EINTR) {
                    return -1;
                }
                throw new ErrnoException("write fd " + fd, errno);
            }
            return n;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** {@code close(fd)}; errors are ignored, as nothing can be done about them. */
    public static void close(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            int ignored = (int) CLOSE.invokeExact(arena.allocate(CALL_STATE), fd);
        } catch (Throwable t) {
            // A descriptor that will not close is gone for us either way.
        }
    }

    /**
     * {@code poll(fds, count, timeoutMillis)}: how many descriptors have events, 0 on timeout or interruption.
     */
    public static int poll(MemorySegment fds, int count, int timeoutMillis, MemorySegment state) throws IOException {
        try {
            int n = (int) POLL.invokeExact(state, fds, (long) count, timeoutMillis);
            if (n < 0) {
                int errno = (int) ERRNO.get(state, 0L);
                if (errno == EINTR) {
                    return 0;
                }
                throw new ErrnoException("poll", errno);
            }
            return n;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** A non-blocking, close-on-exec {@code eventfd}: the poll loop's wake-up bell. */
    static int eventfd() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int fd = (int) EVENTFD.invokeExact(state, 0, EFD_NONBLOCK | EFD_CLOEXEC);
            check(fd, state, "eventfd");
            return fd;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static final int PR_SET_CHILD_SUBREAPER = 36;
    private static final long SYS_PIDFD_OPEN = 434;
    private static final int P_PID = 1;
    private static final int P_PIDFD = 3;
    public static final int WEXITED = 4;
    public static final int WNOHANG = 1;
    public static final int WNOWAIT = 0x01000000;
    public static final int CLD_EXITED = 1;
    public static final int CLD_KILLED = 2;
    public static final int CLD_DUMPED = 3;
    /** {@code siginfo_t} is 128 bytes; on x86-64 {@code si_code} is at 8, {@code si_pid} at 16, {@code si_status} at 24. */
    private static final long SIGINFO_SIZE = 128;

    /** How a waited-for child ended: {@code pid} 0 when none had (with {@link #WNOHANG}). */
    public record ChildExit(int pid, int code, int status) {
        /** The shell's convention: the exit code, or 128 + the signal that killed it. */
        public int exitStatus() {
            return code == CLD_EXITED ? status : 128 + status;
        }
    }

    private static final int PR_GET_CHILD_SUBREAPER = 37;

    /**
     * Whether this process is the reaper of orphaned descendants ({@code prctl(PR_GET_CHILD_SUBREAPER)}): process-wide
     * and for good once set, whichever class loader set it.
     */
    public static boolean isChildSubreaper() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment flag = arena.allocate(ValueLayout.JAVA_INT);
            int result = (int) PRCTL.invokeExact(state, PR_GET_CHILD_SUBREAPER, flag.address(), 0L, 0L, 0L);
            check(result, state, "prctl(PR_GET_CHILD_SUBREAPER)");
            return flag.get(ValueLayout.JAVA_INT, 0) != 0;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Makes this process the reaper of orphaned descendants ({@code prctl(PR_SET_CHILD_SUBREAPER, 1)}). */
    public static void becomeChildSubreaper() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int result = (int) PRCTL.invokeExact(state, PR_SET_CHILD_SUBREAPER, 1L, 0L, 0L, 0L);
            check(result, state, "prctl(PR_SET_CHILD_SUBREAPER)");
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static final MethodHandle PIPE2 = function("pipe2",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));

    /** {@code pipe2(flags)}: the read end, then the write end. */
    public static int[] pipe2(int flags) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment ends = arena.allocate(ValueLayout.JAVA_INT, 2);
            int result = (int) PIPE2.invokeExact(state, ends, flags);
            check(result, state, "pipe2");
            return new int[] {ends.getAtIndex(ValueLayout.JAVA_INT, 0), ends.getAtIndex(ValueLayout.JAVA_INT, 1)};
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** {@code pidfd_open(pid, 0)}: a descriptor that becomes readable when the process exits. */
    public static int pidfdOpen(int pid) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            long fd = (long) SYSCALL_2.invokeExact(state, SYS_PIDFD_OPEN, pid, 0);
            check((int) fd, state, "pidfd_open " + pid);
            return (int) fd;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static final long SYS_PIDFD_SEND_SIGNAL = 424;

    /** {@code pidfd_send_signal(pidfd, signal, NULL, 0)}: signals exactly that process, never a recycled pid. */
    public static void pidfdSendSignal(int pidfd, int signal) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            long result = (long) SYSCALL_4.invokeExact(state, SYS_PIDFD_SEND_SIGNAL, pidfd, signal,
                    MemorySegment.NULL, 0);
            // The fd number means nothing to a reader: the caller names the process.
            check((int) result, state, "pidfd_send_signal of signal " + signal);
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** {@code waitid(P_PIDFD, pidfd, …, options)}: reaps (or with {@link #WNOWAIT} peeks at) that child. */
    public static ChildExit waitPidfd(int pidfd, int options) throws IOException {
        return waitid(P_PIDFD, pidfd, options, "waitid pidfd " + pidfd);
    }

    /** {@code waitid(P_PID, pid, …, options)}: reaps that one child. */
    public static ChildExit waitPid(int pid, int options) throws IOException {
        return waitid(P_PID, pid, options, "waitid pid " + pid);
    }

    private static ChildExit waitid(int idType, int id, int options, String call) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment info = arena.allocate(SIGINFO_SIZE);
            int result = (int) WAITID.invokeExact(state, idType, id, info, options);
            check(result, state, call);
            return new ChildExit(info.get(ValueLayout.JAVA_INT, 16), info.get(ValueLayout.JAVA_INT, 8),
                    info.get(ValueLayout.JAVA_INT, 24));
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** {@code kill(pid, signal)}. */
    public static void kill(int pid, int signal) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int result = (int) KILL.invokeExact(state, pid, signal);
            check(result, state, "kill " + pid + " " + signal);
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    // flock(2): advisory locks owned by an open file description, so two descriptors opened separately exclude
    // each other whether they belong to two threads, two class loaders or two processes; fcntl locks (the JDK's
    // FileLock) belong to the process and do not.
    public static final int LOCK_SH = 1;
    public static final int LOCK_EX = 2;
    public static final int LOCK_NB = 4;
    public static final int LOCK_UN = 8;
    private static final MethodHandle FLOCK = function("flock",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

    /**
     * {@code flock(fd, operation)}, retried when a signal interrupts a wait. Returns false when {@link #LOCK_NB}
     * is given and another holder has the lock ({@code EWOULDBLOCK}).
     */
    public static boolean flock(int fd, int operation) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            while (true) {
                int result = (int) FLOCK.invokeExact(state, fd, operation);
                if (result == 0) {
                    return true;
                }
                int errno = (int) ERRNO.get(state, 0L);
                if (errno == EAGAIN && (operation & LOCK_NB) != 0) {
                    return false;
                }
                if (errno != EINTR) {
                    throw new ErrnoException("flock fd " + fd, errno);
                }
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    public static final long MS_RDONLY = 1;
    public static final long MS_NOSUID = 2;
    public static final long MS_NODEV = 4;
    public static final long MS_NOEXEC = 8;
    public static final long MS_SYNCHRONOUS = 16;
    public static final long MS_REMOUNT = 32;
    public static final long MS_MANDLOCK = 64;
    public static final long MS_DIRSYNC = 128;
    public static final long MS_NOATIME = 1024;
    public static final long MS_NODIRATIME = 2048;
    public static final long MS_BIND = 4096;
    public static final long MS_REC = 16384;
    public static final long MS_UNBINDABLE = 1 << 17;
    public static final long MS_PRIVATE = 1 << 18;
    public static final long MS_SLAVE = 1 << 19;
    public static final long MS_SHARED = 1 << 20;
    public static final long MS_RELATIME = 1 << 21;
    public static final long MS_STRICTATIME = 1 << 24;
    public static final int MNT_DETACH = 2;
    public static final int UMOUNT_NOFOLLOW = 8;

    /** {@code mount(source, target, type, flags, data)}; null strings are passed as NULL. */
    public static void mount(String source, String target, String type, long flags, String data)
            throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int result = (int) MOUNT.invokeExact(state, string(arena, source), string(arena, target),
                    string(arena, type), flags, string(arena, data));
            check(result, state, "mount " + source + " on " + target);
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * The flags of the mount {@code path} is on, from {@code statfs}'s {@code f_flags}: {@code ST_*} bits. Those of
     * read-only, nosuid, nodev, noexec, noatime and nodiratime have the values of the matching {@code MS_*} flags;
     * {@code ST_RELATIME} (4096) does not.
     */
    public static long mountFlags(Path path) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment buffer = arena.allocate(STATFS_SIZE, 8);
            int result = (int) STATFS.invokeExact(state, arena.allocateFrom(path.toString()), buffer);
            check(result, state, "statfs " + path);
            return buffer.get(ValueLayout.JAVA_LONG, STATFS_FLAGS);
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * The free inodes of the file system {@code path} is on, {@code statfs}'s {@code f_ffree}; -1 for one that
     * counts none ({@code f_files} 0: btrfs, for one, makes inodes as it needs them).
     */
    public static long freeInodes(Path path) throws IOException {
        return free(path, STATFS_FILES, STATFS_FFREE);
    }

    /**
     * The blocks of the file system {@code path} is on that this process (and runc, which runs as it) may still
     * take: {@code statfs}'s {@code f_bfree} for root, who may take the blocks ext4 keeps back for it, else
     * {@code f_bavail} (on an ext4 with only those left, 0 of them, root's runc wrote on); -1 for one that counts
     * none ({@code f_blocks} 0: a tmpfs mounted with {@code size=0}, which has no limit, and ramfs say 0 of 0 free,
     * and are never full).
     */
    public static long freeBlocks(Path path) throws IOException {
        return free(path, STATFS_BLOCKS, Root.IS ? STATFS_BFREE : STATFS_BAVAIL);
    }

    /** Whether this process runs as root: the owner of {@code /proc/self} is its effective uid. */
    private static final class Root {
        static final boolean IS = isRoot();

        private static boolean isRoot() {
            try {
                return (int) Files.getAttribute(Path.of("/proc/self"), "unix:uid") == 0;
            } catch (IOException | RuntimeException e) {
                return false;
            }
        }
    }

    /** {@code statfs}'s field at {@code free}, or -1 when the count at {@code total} is 0 (nothing counted). */
    private static long free(Path path, long total, long free) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment buffer = arena.allocate(STATFS_SIZE, 8);
            int result = (int) STATFS.invokeExact(state, arena.allocateFrom(path.toString()), buffer);
            check(result, state, "statfs " + path);
            return buffer.get(ValueLayout.JAVA_LONG, total) == 0 ? -1 : buffer.get(ValueLayout.JAVA_LONG, free);
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** {@code statfs}'s {@code f_type} of an overlay file system ({@code OVERLAYFS_SUPER_MAGIC}). */
    public static final long OVERLAYFS_MAGIC = 0x794c7630L;

    /** The type of the file system {@code path} is on: {@code statfs}'s {@code f_type}, a magic number. */
    public static long fileSystemType(Path path) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment buffer = arena.allocate(STATFS_SIZE, 8);
            int result = (int) STATFS.invokeExact(state, arena.allocateFrom(path.toString()), buffer);
            check(result, state, "statfs " + path);
            return buffer.get(ValueLayout.JAVA_LONG, 0);
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * The id of the mount {@code path} is on, {@code path} itself not followed if it is a symlink. The kernel's
     * 64-bit id that is never reused ({@code STATX_MNT_ID_UNIQUE}, Linux 6.8) when it has one, else the classic
     * id; one kernel always answers with the same kind.
     */
    public static long mountId(Path path) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment buffer = arena.allocate(STATX_SIZE, 8);
            int result = (int) STATX.invokeExact(state, AT_FDCWD, arena.allocateFrom(path.toString()),
                    AT_SYMLINK_NOFOLLOW, STATX_MNT_ID | STATX_MNT_ID_UNIQUE, buffer);
            check(result, state, "statx " + path);
            if ((buffer.get(ValueLayout.JAVA_INT, 0) & (STATX_MNT_ID | STATX_MNT_ID_UNIQUE)) == 0) {
                throw new IOException("statx " + path + ": the kernel reports no mount id");
            }
            return buffer.get(ValueLayout.JAVA_LONG, 144);
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static final int CLONE_FS = 0x200;
    private static final MethodHandle UNSHARE = function("unshare",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle CHDIR = function("chdir",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));

    /**
     * {@code mount(2)} with relative names in {@code data} read from {@code dir}: from a thread of its own that
     * leaves the process's working directory alone ({@code unshare(CLONE_FS)}, then {@code chdir}), as
     * containerd mounts an overlay whose lowers do not fit in a page. {@code target} must be absolute. Blocking.
     */
    public static void mountFrom(Path dir, String source, String target, String type, long flags, String data)
            throws IOException {
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread mounter = Thread.ofPlatform().name("shimmer-mount-from").unstarted(() -> {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment state = arena.allocate(CALL_STATE);
                check((int) UNSHARE.invokeExact(state, CLONE_FS), state, "unshare(CLONE_FS)");
                check((int) CHDIR.invokeExact(state, arena.allocateFrom(dir.toString())), state, "chdir " + dir);
                mount(source, target, type, flags, data);
            } catch (Throwable t) {
                failure.set(t);
            }
        });
        mounter.start();
        boolean interrupted = false;
        while (true) {
            try {
                mounter.join();
                break;
            } catch (InterruptedException e) {
                // The mount is under way: its outcome must be known, or a mount could be left unrecorded.
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        switch (failure.get()) {
            case null -> {}
            case IOException e -> throw e;
            case RuntimeException e -> throw e;
            case Error e -> throw e;
            default -> throw new IllegalStateException(failure.get());
        }
    }

    /** {@code umount2(target, flags)}. */
    public static void umount2(String target, int flags) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int result = (int) UMOUNT2.invokeExact(state, arena.allocateFrom(target), flags);
            check(result, state, "umount " + target);
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    // The names of a file's own extended attributes, never of what a symbolic link points to: the JDK lists only
    // the user namespace, and overlay keeps its marks in trusted.overlay.*.

    private static final int XATTR_BUFFER = 64 * 1024;
    private static final MethodHandle LLISTXATTR = function("llistxattr",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG));

    /** {@code llistxattr(path)}: the names of {@code path}'s extended attributes, in the kernel's order. */
    public static List<String> llistxattr(Path path) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment buffer = arena.allocate(XATTR_BUFFER);
            long size = (long) LLISTXATTR.invokeExact(state, arena.allocateFrom(path.toString()), buffer,
                    (long) XATTR_BUFFER);
            check((int) Math.min(size, 0), state, "llistxattr " + path);
            List<String> names = new ArrayList<>();
            long start = 0;
            for (long i = 0; i < size; i++) {
                if (buffer.get(ValueLayout.JAVA_BYTE, i) == 0) {
                    names.add(buffer.getString(start, FILE_NAMES));
                    start = i + 1;
                }
            }
            return names;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    // Directory walking that cannot be redirected: every step goes through a descriptor of the directory it
    // acts in, so a mount or symlink placed on a path after it was checked is never followed.

    /**
     * The charset the JDK maps file names with, for messages. Names themselves stay bytes here: a name that is
     * not valid in the charset (a container may write any bytes) must still be found again.
     */
    public static final Charset FILE_NAMES = Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));

    public static final int AT_FDCWD = -100;
    public static final int AT_SYMLINK_NOFOLLOW = 0x100;
    public static final int AT_REMOVEDIR = 0x200;
    public static final int AT_EMPTY_PATH = 0x1000;
    public static final int O_DIRECTORY = 0200000;
    public static final int O_NOFOLLOW = 0400000;
    public static final int O_PATH = 010000000;
    public static final int EPERM = 1;
    public static final int ENOENT = 2;
    public static final int ENOMEM = 12;
    public static final int EACCES = 13;
    public static final int EBUSY = 16;
    public static final int EXDEV = 18;
    public static final int ENOTDIR = 20;
    public static final int EISDIR = 21;
    public static final int ENFILE = 23;
    public static final int EMFILE = 24;
    public static final int ENOSPC = 28;
    public static final int EROFS = 30;
    public static final int ENOTEMPTY = 39;
    public static final int ELOOP = 40;
    public static final int EDQUOT = 122;

    private static final int STATX_TYPE = 0x1;
    private static final int STATX_MNT_ID = 0x1000;
    private static final int STATX_MNT_ID_UNIQUE = 0x4000;
    /** {@code struct statfs} is 120 bytes on 64-bit Linux, {@code f_type} at 0, {@code f_flags} at 80. */
    private static final long STATFS_SIZE = 120;
    private static final long STATFS_FLAGS = 80;
    // f_blocks, f_bfree, f_bavail, f_files and f_ffree: after f_type and f_bsize, 8 bytes each on 64-bit Linux.
    private static final long STATFS_BLOCKS = 16;
    private static final long STATFS_BFREE = 24;
    private static final long STATFS_BAVAIL = 32;
    private static final long STATFS_FILES = 40;
    private static final long STATFS_FFREE = 48;
    /** {@code struct statx} is 256 bytes: {@code stx_mask} at 0, {@code stx_mode} (u16) at 28, {@code stx_mnt_id} at 144. */
    private static final long STATX_SIZE = 256;
    private static final int S_IFMT = 0170000;
    private static final int S_IFDIR = 0040000;
    private static final long SYS_GETDENTS64 = 217;
    /** {@code struct linux_dirent64}: {@code d_reclen} (u16) at 16, {@code d_type} at 18, {@code d_name} at 19. */
    private static final int DIRENT_BUFFER = 32 * 1024;
    private static final byte[] DOT = {'.'};
    private static final byte[] DOT_DOT = {'.', '.'};

    private static final MethodHandle STATX = function("statx",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
    private static final MethodHandle STATFS = function("statfs",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
    private static final MethodHandle OPENAT = function("openat",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_INT));
    private static final MethodHandle UNLINKAT = function("unlinkat",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_INT));
    private static final MethodHandle SYSCALL_FD_BUFFER = downcall("syscall",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_LONG),
            CAPTURE_ERRNO, Linker.Option.firstVariadicArg(1));

    /** What {@code statx} says about one file: whether it is a directory, and the id of the mount it is on. */
    public record FileIdentity(boolean directory, long mountId) {}

    /**
     * {@code statx(dirfd, name, flags, STATX_TYPE | STATX_MNT_ID)}. Fails rather than guess when the kernel does not
     * report the mount id.
     */
    public static FileIdentity statx(int dirfd, byte[] name, int flags) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment buffer = arena.allocate(STATX_SIZE, 8);
            int result = (int) STATX.invokeExact(state, dirfd, cString(arena, name), flags,
                    STATX_TYPE | STATX_MNT_ID, buffer);
            check(result, state, "statx " + display(name));
            if ((buffer.get(ValueLayout.JAVA_INT, 0) & STATX_MNT_ID) == 0) {
                throw new IOException("statx " + display(name) + ": the kernel reports no mount id");
            }
            int mode = Short.toUnsignedInt(buffer.get(ValueLayout.JAVA_SHORT, 28));
            return new FileIdentity((mode & S_IFMT) == S_IFDIR, buffer.get(ValueLayout.JAVA_LONG, 144));
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** {@code openat(dirfd, name, flags)}; returns the descriptor. */
    public static int openat(int dirfd, byte[] name, int flags) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int fd = (int) OPENAT.invokeExact(state, dirfd, cString(arena, name), flags);
            check(fd, state, "openat " + display(name));
            return fd;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * {@code openat(dirfd, name, flags)} with the caller's C string and call state, for a loop over many files:
     * the descriptor, or -1 with {@code errno} in {@code state} (see {@link #errno}). Nothing allocated per call.
     */
    static int openat(int dirfd, MemorySegment name, int flags, MemorySegment state) {
        try {
            return (int) OPENAT.invokeExact(state, dirfd, name, flags);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** The {@code errno} a call left in {@code state}. */
    static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    /** {@code close(fd)} with the caller's call state; errors are ignored, as in {@link #close(int)}. */
    static void close(int fd, MemorySegment state) {
        try {
            int ignored = (int) CLOSE.invokeExact(state, fd);
        } catch (Throwable t) {
            // A descriptor that will not close is gone for us either way.
        }
    }

    /** {@code unlinkat(dirfd, name, flags)}. */
    public static void unlinkat(int dirfd, byte[] name, int flags) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int result = (int) UNLINKAT.invokeExact(state, dirfd, cString(arena, name), flags);
            check(result, state, "unlinkat " + display(name));
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** The names in the directory open as {@code dirfd} ({@code getdents64}), as bytes, without "." and "..". */
    public static List<byte[]> directoryEntries(int dirfd) throws IOException {
        List<byte[]> names = new ArrayList<>();
        forEachEntry(dirfd, (entries, nameStart) -> {
            int nameEnd = nameStart;
            while (entries[nameEnd] != 0) {
                nameEnd++;
            }
            byte[] name = Arrays.copyOfRange(entries, nameStart, nameEnd);
            if (!Arrays.equals(name, DOT) && !Arrays.equals(name, DOT_DOT)) {
                names.add(name);
            }
        });
        return names;
    }

    /**
     * The entries of the directory open as {@code dirfd} whose names are decimal numbers that fit an {@code int}
     * (the pids of {@code /proc}), parsed where {@code getdents64} put them: listing {@code /proc} as strings and
     * testing each was about half of a bundle delete's process scan (~200 µs of CPU after 600 warm-ups; ~125 now).
     */
    public static int[] numberedEntries(int dirfd) throws IOException {
        int[][] numbers = {new int[256]};
        int[] count = {0};
        forEachEntry(dirfd, (entries, nameStart) -> {
            long number = 0;
            int digits = 0;
            for (int at = nameStart; entries[at] != 0; at++) {
                byte c = entries[at];
                if (c < '0' || c > '9' || ++digits > 10) {
                    return;
                }
                number = number * 10 + (c - '0');
            }
            if (digits > 0 && number <= Integer.MAX_VALUE) {
                if (count[0] == numbers[0].length) {
                    numbers[0] = Arrays.copyOf(numbers[0], count[0] * 2);
                }
                numbers[0][count[0]++] = (int) number;
            }
        });
        return Arrays.copyOf(numbers[0], count[0]);
    }

    /** Sees one entry of a {@code getdents64} listing: its NUL-terminated name starts at {@code nameStart}. */
    @FunctionalInterface
    private interface EntryVisitor {
        void visit(byte[] entries, int nameStart);
    }

    /** Lists the directory open as {@code dirfd} to its end ({@code getdents64}); each entry to {@code visitor}. */
    private static void forEachEntry(int dirfd, EntryVisitor visitor) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment buffer = arena.allocate(DIRENT_BUFFER, 8);
            while (true) {
                long n = (long) SYSCALL_FD_BUFFER.invokeExact(state, SYS_GETDENTS64, dirfd, buffer,
                        (long) DIRENT_BUFFER);
                check((int) n, state, "getdents64 fd " + dirfd);
                if (n == 0) {
                    return;
                }
                // One bulk copy, then plain array reads: an access through the segment per byte cost a
                // microsecond or more in code the JIT had not compiled fully yet, as code run once per container is.
                byte[] entries = buffer.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
                for (int offset = 0; offset < n; offset += recordLength(entries, offset)) {
                    visitor.visit(entries, offset + 19);
                }
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static final boolean LITTLE_ENDIAN = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN;

    /** {@code d_reclen} of the {@code linux_dirent64} at {@code offset}: a u16 at 16, in the machine's order. */
    private static int recordLength(byte[] entries, int offset) {
        int first = entries[offset + 16] & 0xff;
        int second = entries[offset + 17] & 0xff;
        return LITTLE_ENDIAN ? first | second << 8 : first << 8 | second;
    }

    // Layer unpacking: every file is made relative to a descriptor of the directory it lands in, and the last
    // component is never followed, so an entry can only ever write where the walk that opened its parent allowed.

    public static final int O_CREAT = 0100;
    public static final int O_TRUNC = 01000;
    public static final int O_APPEND = 02000;
    public static final int O_EXCL = 0200;
    public static final int S_IFIFO = 0010000;
    public static final int S_IFCHR = 0020000;
    public static final int S_IFBLK = 0060000;
    public static final int S_IFLNK = 0120000;
    public static final int EOPNOTSUPP = 95;
    public static final int ENODATA = 61;
    private static final int STATX_MODE = 0x2;
    private static final int STATX_INO = 0x100;
    /** In {@code struct statx}: {@code stx_ino} at 32. */
    private static final long STATX_INO_OFFSET = 32;
    /** {@code struct timespec[2]}: access then modification, each {@code { long tv_sec; long tv_nsec; }}. */
    private static final long TIMESPECS_SIZE = 32;

    private static final MethodHandle MKDIRAT = function("mkdirat",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_INT));
    private static final MethodHandle MKNODAT = function("mknodat",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
    // openat's mode is a variadic argument.
    private static final MethodHandle OPENAT_CREATE = downcall("openat",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_INT, ValueLayout.JAVA_INT),
            CAPTURE_ERRNO, Linker.Option.firstVariadicArg(3));
    private static final MethodHandle SYMLINKAT = function("symlinkat",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT,
                    ValueLayout.ADDRESS));
    private static final MethodHandle LINKAT = function("linkat",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle FCHOWNAT = function("fchownat",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle FCHMODAT = function("fchmodat",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle UTIMENSAT = function("utimensat",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle LSETXATTR = function("lsetxattr",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
    private static final MethodHandle FSETXATTR = function("fsetxattr",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
    private static final MethodHandle FCHOWN = function("fchown",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT));
    private static final MethodHandle FCHMOD = function("fchmod",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle FUTIMENS = function("futimens",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
    private static final MethodHandle LGETXATTR = function("lgetxattr",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));

    /** What {@code statx} says about a file found without following it: its mode (type bits included) and inode. */
    public record FileStatus(int mode, long inode) {
        public int type() {
            return mode & S_IFMT;
        }

        public boolean isDirectory() {
            return type() == S_IFDIR;
        }

        public boolean isSymlink() {
            return type() == S_IFLNK;
        }

        public boolean isRegularFile() {
            return type() == S_IFREG;
        }
    }

    /** A body for {@link #call}: the raw result of one downcall, negative on failure with {@code errno} in state. */
    @FunctionalInterface
    private interface Downcall {
        long invoke(Arena arena, MemorySegment state) throws Throwable;
    }

    /** Runs one downcall in its own arena; a negative result throws {@link ErrnoException} naming {@code what}. */
    private static long call(String what, Downcall downcall) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            long result = downcall.invoke(arena, state);
            if (result < 0) {
                throw new ErrnoException(what, (int) ERRNO.get(state, 0L));
            }
            return result;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * {@code statx(dirfd, name, AT_SYMLINK_NOFOLLOW)}: the file {@code name} itself, a symlink not followed; null
     * when there is none. Absence is an answer here, not an error: an unpacker asks for every file it makes.
     */
    public static FileStatus lstatat(int dirfd, byte[] name) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment buffer = arena.allocate(STATX_SIZE, 8);
            int result = (int) STATX.invokeExact(state, dirfd, cString(arena, name), AT_SYMLINK_NOFOLLOW,
                    STATX_TYPE | STATX_MODE | STATX_INO, buffer);
            if (result < 0 && (int) ERRNO.get(state, 0L) == ENOENT) {
                return null;
            }
            check(result, state, "statx " + display(name));
            return new FileStatus(Short.toUnsignedInt(buffer.get(ValueLayout.JAVA_SHORT, 28)),
                    buffer.get(ValueLayout.JAVA_LONG, STATX_INO_OFFSET));
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * {@link #lstatat} of a path: the file itself, a symlink not followed; null when there is none. For probes on
     * a lifecycle's path: the JDK's {@code Files.isDirectory} and {@code readAllBytes} answer an absent file with
     * a thrown exception, whose stack trace cost about 20 µs each under the io threads' deep stacks.
     */
    public static FileStatus lstat(Path path) throws IOException {
        return lstatat(AT_FDCWD, path.toString().getBytes(FILE_NAMES));
    }

    /**
     * {@code Files.isDirectory(path, NOFOLLOW_LINKS)} without its exception for an absent file: false too when it
     * cannot tell, as that answers.
     */
    public static boolean isDirectoryNoFollow(Path path) {
        try {
            FileStatus status = lstat(path);
            return status != null && status.isDirectory();
        } catch (IOException cannotTell) {
            return false;
        }
    }

    /** {@code openat(dirfd, name, flags, mode)}, for flags that create ({@link #O_CREAT}); returns the descriptor. */
    public static int openat(int dirfd, byte[] name, int flags, int mode) throws IOException {
        return (int) call("openat " + display(name),
                (arena, state) -> (int) OPENAT_CREATE.invokeExact(state, dirfd, cString(arena, name), flags, mode));
    }

    /** {@code mkdirat(dirfd, name, mode)}. */
    public static void mkdirat(int dirfd, byte[] name, int mode) throws IOException {
        call("mkdirat " + display(name),
                (arena, state) -> (int) MKDIRAT.invokeExact(state, dirfd, cString(arena, name), mode));
    }

    /** {@code mknodat(dirfd, name, mode, makedev(major, minor))}; {@code mode} carries the file type. */
    public static void mknodat(int dirfd, byte[] name, int mode, int major, int minor) throws IOException {
        long dev = makedev(major, minor);
        call("mknodat " + display(name),
                (arena, state) -> (int) MKNODAT.invokeExact(state, dirfd, cString(arena, name), mode, dev));
    }

    /** glibc's {@code makedev}: 12 bits of major and 8 of minor low, the rest of each above. */
    public static long makedev(int major, int minor) {
        long ma = Integer.toUnsignedLong(major);
        long mi = Integer.toUnsignedLong(minor);
        return ((ma & 0xfffff000L) << 32) | ((ma & 0xfffL) << 8) | ((mi & 0xffffff00L) << 12) | (mi & 0xffL);
    }

    /** {@code symlinkat(target, dirfd, name)}: {@code target} is stored as text, never resolved. */
    public static void symlinkat(byte[] target, int dirfd, byte[] name) throws IOException {
        call("symlinkat " + display(name), (arena, state) ->
                (int) SYMLINKAT.invokeExact(state, cString(arena, target), dirfd, cString(arena, name)));
    }

    /** {@code linkat(olddirfd, oldname, newdirfd, newname, 0)}: a symlink at {@code oldname} is linked as is. */
    public static void linkat(int olddirfd, byte[] oldname, int newdirfd, byte[] newname) throws IOException {
        call("linkat " + display(oldname) + " to " + display(newname), (arena, state) -> (int) LINKAT.invokeExact(
                state, olddirfd, cString(arena, oldname), newdirfd, cString(arena, newname), 0));
    }

    /** {@code fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW)}: {@code lchown}. */
    public static void lchownat(int dirfd, byte[] name, int uid, int gid) throws IOException {
        call("lchown " + display(name), (arena, state) ->
                (int) FCHOWNAT.invokeExact(state, dirfd, cString(arena, name), uid, gid, AT_SYMLINK_NOFOLLOW));
    }

    /**
     * {@code fchmodat(dirfd, name, mode, AT_SYMLINK_NOFOLLOW)}: set-id and sticky bits included. Fails with
     * {@link #EOPNOTSUPP} on a symlink, whose mode Linux does not keep.
     */
    public static void lchmodat(int dirfd, byte[] name, int mode) throws IOException {
        call("chmod " + display(name), (arena, state) ->
                (int) FCHMODAT.invokeExact(state, dirfd, cString(arena, name), mode, AT_SYMLINK_NOFOLLOW));
    }

    /** {@code utimensat(dirfd, name, {atime, mtime}, AT_SYMLINK_NOFOLLOW)}, times in nanoseconds since the epoch. */
    public static void lutimesat(int dirfd, byte[] name, long atimeNanos, long mtimeNanos) throws IOException {
        call("utimensat " + display(name), (arena, state) -> (int) UTIMENSAT.invokeExact(state, dirfd,
                cString(arena, name), timespecs(arena, atimeNanos, mtimeNanos), AT_SYMLINK_NOFOLLOW));
    }

    /** {@code fchown(fd, uid, gid)}. */
    public static void fchown(int fd, int uid, int gid) throws IOException {
        call("fchown", (arena, state) -> (int) FCHOWN.invokeExact(state, fd, uid, gid));
    }

    /** {@code fchmod(fd, mode)}: set-id and sticky bits included. */
    public static void fchmod(int fd, int mode) throws IOException {
        call("fchmod", (arena, state) -> (int) FCHMOD.invokeExact(state, fd, mode));
    }

    /** {@code futimens(fd, {atime, mtime})}, times in nanoseconds since the epoch. */
    public static void futimens(int fd, long atimeNanos, long mtimeNanos) throws IOException {
        call("futimens", (arena, state) ->
                (int) FUTIMENS.invokeExact(state, fd, timespecs(arena, atimeNanos, mtimeNanos)));
    }

    private static MemorySegment timespecs(Arena arena, long atimeNanos, long mtimeNanos) {
        MemorySegment times = arena.allocate(TIMESPECS_SIZE, 8);
        times.set(ValueLayout.JAVA_LONG, 0, Math.floorDiv(atimeNanos, 1_000_000_000L));
        times.set(ValueLayout.JAVA_LONG, 8, Math.floorMod(atimeNanos, 1_000_000_000L));
        times.set(ValueLayout.JAVA_LONG, 16, Math.floorDiv(mtimeNanos, 1_000_000_000L));
        times.set(ValueLayout.JAVA_LONG, 24, Math.floorMod(mtimeNanos, 1_000_000_000L));
        return times;
    }

    /**
     * {@code lsetxattr} on {@code name} in the directory open as {@code dirfd}, reached through
     * {@code /proc/self/fd/<dirfd>/<name>}: the directory is the one the descriptor holds, and {@code name} itself
     * is not followed.
     */
    public static void lsetxattrat(int dirfd, byte[] name, String attribute, byte[] value) throws IOException {
        byte[] path = procPath(dirfd, name);
        call("lsetxattr " + attribute + " on " + display(name), (arena, state) -> {
            MemorySegment bytes = arena.allocate(Math.max(1, value.length));
            MemorySegment.copy(value, 0, bytes, ValueLayout.JAVA_BYTE, 0, value.length);
            return (int) LSETXATTR.invokeExact(state, cString(arena, path), arena.allocateFrom(attribute), bytes,
                    (long) value.length, 0);
        });
    }

    /** {@code fsetxattr(fd, attribute, value)}. */
    public static void fsetxattr(int fd, String attribute, byte[] value) throws IOException {
        call("fsetxattr " + attribute, (arena, state) -> {
            MemorySegment bytes = arena.allocate(Math.max(1, value.length));
            MemorySegment.copy(value, 0, bytes, ValueLayout.JAVA_BYTE, 0, value.length);
            return (int) FSETXATTR.invokeExact(state, fd, arena.allocateFrom(attribute), bytes, (long) value.length,
                    0);
        });
    }

    /** {@code lgetxattr(path, attribute)}: the value, or null when the file has no such attribute. */
    public static byte[] lgetxattr(Path path, String attribute) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(64 * 1024);
            long size = call("lgetxattr " + attribute + " of " + path, (a, state) -> (long) LGETXATTR.invokeExact(
                    state, a.allocateFrom(path.toString()), a.allocateFrom(attribute), buffer, buffer.byteSize()));
            return buffer.asSlice(0, size).toArray(ValueLayout.JAVA_BYTE);
        } catch (ErrnoException e) {
            if (e.errno() == ENODATA) {
                return null;
            }
            throw e;
        }
    }

    private static byte[] procPath(int dirfd, byte[] name) {
        byte[] prefix = ("/proc/self/fd/" + dirfd + "/").getBytes(FILE_NAMES);
        byte[] path = Arrays.copyOf(prefix, prefix.length + name.length);
        System.arraycopy(name, 0, path, prefix.length, name.length);
        return path;
    }

    /** A file name's bytes as text, for messages. */
    public static String display(byte[] name) {
        return new String(name, FILE_NAMES);
    }

    private static MemorySegment cString(Arena arena, byte[] name) {
        MemorySegment string = arena.allocate(name.length + 1L);
        MemorySegment.copy(name, 0, string, ValueLayout.JAVA_BYTE, 0, name.length);
        return string;
    }

    /** The text {@code strerror} gives for {@code errno}, as the JDK's own file errors carry it. */
    public static String strerror(int errno) {
        return describe(errno);
    }

    private static MemorySegment string(Arena arena, String value) {
        return value == null ? MemorySegment.NULL : arena.allocateFrom(value);
    }

    /** A buffer for {@code errno} capture, for the calls that take one. */
    public static MemorySegment allocateCallState(Arena arena) {
        return arena.allocate(CALL_STATE);
    }

    public static void setPollFd(MemorySegment fds, int index, int fd, short events) {
        long offset = index * POLLFD.byteSize();
        POLLFD_FD.set(fds, offset, fd);
        POLLFD_EVENTS.set(fds, offset, events);
        POLLFD_REVENTS.set(fds, offset, (short) 0);
    }

    public static short pollRevents(MemorySegment fds, int index) {
        return (short) POLLFD_REVENTS.get(fds, index * POLLFD.byteSize());
    }

    // Image store: a file opened by a descriptor is checked for what it is before it is read or locked, and a
    // layer's bytes reach the disk before it gets its name.

    public static final int S_IFREG = 0100000;
    public static final int O_NOCTTY = 0400;
    private static final byte[] EMPTY_NAME = {};
    private static final MethodHandle SYNCFS = function("syncfs",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

    /** {@code statx(fd, "", AT_EMPTY_PATH)}: the mode and inode of the open file {@code fd}. */
    public static FileStatus fstat(int fd) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment buffer = arena.allocate(STATX_SIZE, 8);
            int result = (int) STATX.invokeExact(state, fd, cString(arena, EMPTY_NAME), AT_EMPTY_PATH,
                    STATX_TYPE | STATX_MODE | STATX_INO, buffer);
            check(result, state, "statx fd " + fd);
            return new FileStatus(Short.toUnsignedInt(buffer.get(ValueLayout.JAVA_SHORT, 28)),
                    buffer.get(ValueLayout.JAVA_LONG, STATX_INO_OFFSET));
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    // A directory a layer makes only as a parent takes its attributes from the lower layer's directory (containerd's
    // mkparent): read through descriptors, so neither side is reached by a path that could be redirected.

    private static final int STATX_UID = 0x8;
    private static final int STATX_GID = 0x10;
    private static final int STATX_ATIME = 0x20;
    private static final int STATX_MTIME = 0x40;
    private static final long STATX_ATIME_OFFSET = 64;
    private static final long STATX_MTIME_OFFSET = 112;
    private static final MethodHandle FLISTXATTR = function("flistxattr",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG));
    private static final MethodHandle FGETXATTR = function("fgetxattr",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));

    /** A file's permission bits (set-id and sticky included), owner and times in nanoseconds since the epoch. */
    public record FileAttributes(int mode, int uid, int gid, long atimeNanos, long mtimeNanos) {}

    /** {@code statx(fd, "", AT_EMPTY_PATH)}: the attributes of the open file {@code fd}. */
    public static FileAttributes fattributes(int fd) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment buffer = arena.allocate(STATX_SIZE, 8);
            int result = (int) STATX.invokeExact(state, fd, cString(arena, EMPTY_NAME), AT_EMPTY_PATH,
                    STATX_MODE | STATX_UID | STATX_GID | STATX_ATIME | STATX_MTIME, buffer);
            check(result, state, "statx fd " + fd);
            return new FileAttributes(Short.toUnsignedInt(buffer.get(ValueLayout.JAVA_SHORT, 28)) & 07777,
                    buffer.get(ValueLayout.JAVA_INT, 20), buffer.get(ValueLayout.JAVA_INT, 24),
                    statxNanos(buffer, STATX_ATIME_OFFSET), statxNanos(buffer, STATX_MTIME_OFFSET));
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static long statxNanos(MemorySegment buffer, long offset) {
        return buffer.get(ValueLayout.JAVA_LONG, offset) * 1_000_000_000L
                + Integer.toUnsignedLong(buffer.get(ValueLayout.JAVA_INT, offset + 8));
    }

    /** {@code flistxattr(fd)}: the names of the open file's extended attributes, every namespace. */
    public static List<String> flistxattr(int fd) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(XATTR_BUFFER);
            long size = call("flistxattr fd " + fd,
                    (a, state) -> (long) FLISTXATTR.invokeExact(state, fd, buffer, (long) XATTR_BUFFER));
            List<String> names = new ArrayList<>();
            long start = 0;
            for (long i = 0; i < size; i++) {
                if (buffer.get(ValueLayout.JAVA_BYTE, i) == 0) {
                    names.add(buffer.getString(start, StandardCharsets.UTF_8));
                    start = i + 1;
                }
            }
            return names;
        }
    }

    /** {@code fgetxattr(fd, attribute)}: the value, or null when the file has no such attribute. */
    public static byte[] fgetxattr(int fd, String attribute) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(XATTR_BUFFER);
            long size = call("fgetxattr " + attribute, (a, state) -> (long) FGETXATTR.invokeExact(
                    state, fd, a.allocateFrom(attribute), buffer, buffer.byteSize()));
            return buffer.asSlice(0, size).toArray(ValueLayout.JAVA_BYTE);
        } catch (ErrnoException e) {
            if (e.errno() == ENODATA) {
                return null;
            }
            throw e;
        }
    }

    /** {@code syncfs(fd)}: writes out every dirty page of the file system {@code fd} is on. */
    public static void syncfs(int fd) throws IOException {
        call("syncfs fd " + fd, (arena, state) -> (int) SYNCFS.invokeExact(state, fd));
    }

    // ---- terminals: runc's console socket and the pseudo-terminal master it hands over (issue 13)

    public static final int EIO = 5;
    private static final int AF_UNIX = 1;
    private static final int SOCK_STREAM = 1;
    private static final int SOCK_NONBLOCK = 04000;
    private static final int SOCK_CLOEXEC = 02000000;
    private static final int SOL_SOCKET = 1;
    private static final int SCM_RIGHTS = 1;
    private static final int MSG_CTRUNC = 0x8;
    private static final int MSG_CMSG_CLOEXEC = 0x40000000;
    private static final int F_GETFL = 3;
    private static final int F_SETFL = 4;
    private static final long TIOCSWINSZ = 0x5414;
    /** {@code sun_path} holds 108 bytes, the terminating NUL included. */
    public static final int UNIX_PATH_MAX = 107;
    private static final long SOCKADDR_UN_SIZE = 110;
    // x86_64 and aarch64: struct msghdr is 56 bytes; a cmsghdr's data starts 16 bytes in, aligned to 8.
    private static final long MSGHDR_SIZE = 56;
    private static final long CMSG_HEADER = 16;
    private static final long CONTROL_SIZE = 128;

    private static final MethodHandle SOCKET = function("socket",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT));
    private static final MethodHandle BIND = function("bind",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_INT));
    private static final MethodHandle LISTEN = function("listen",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle ACCEPT4 = function("accept4",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle RECVMSG = function("recvmsg",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_INT));
    // fcntl and ioctl are variadic after their second argument.
    private static final MethodHandle FCNTL = downcall("fcntl",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT),
            CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle IOCTL_POINTER = downcall("ioctl",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
                    ValueLayout.ADDRESS),
            CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));

    /**
     * A non-blocking, close-on-exec unix stream socket listening on {@code path} (a path socket, never an
     * abstract one; at most {@link #UNIX_PATH_MAX} bytes), with a backlog of one.
     */
    public static int listenUnix(Path path) throws IOException {
        byte[] name = unixPath(path);
        int fd = unixSocket(path);
        try {
            call("bind " + path, (arena, state) ->
                    (int) BIND.invokeExact(state, fd, unixAddress(arena, name), (int) SOCKADDR_UN_SIZE));
            call("listen " + path, (arena, state) -> (int) LISTEN.invokeExact(state, fd, 1));
            return fd;
        } catch (IOException | RuntimeException e) {
            close(fd);
            throw e;
        }
    }

    /** {@code path}'s bytes for {@code sun_path}; refused, naming it, if they do not fit. */
    private static byte[] unixPath(Path path) throws IOException {
        byte[] name = path.toString().getBytes(FILE_NAMES);
        if (name.length > UNIX_PATH_MAX) {
            throw new IOException("socket path " + path + " is " + name.length + " bytes; at most " + UNIX_PATH_MAX
                    + " fit in sun_path");
        }
        return name;
    }

    /** A new non-blocking, close-on-exec unix stream socket, for {@code path}. */
    private static int unixSocket(Path path) throws IOException {
        return (int) call("socket for " + path,
                (arena, state) -> (int) SOCKET.invokeExact(state, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        0));
    }

    /** A {@code sockaddr_un} for {@code name}, NUL-padded (the arena zeroes what it allocates). */
    private static MemorySegment unixAddress(Arena arena, byte[] name) {
        MemorySegment address = arena.allocate(SOCKADDR_UN_SIZE, 2);
        address.set(ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
        MemorySegment.copy(name, 0, address, ValueLayout.JAVA_BYTE, 2, name.length);
        return address;
    }

    private static final int EINPROGRESS = 115;
    private static final int ECONNREFUSED = 111;
    private static final MethodHandle CONNECT = function("connect",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_INT));

    /** What a connect to a unix socket path found: see {@link #probeUnix}. */
    public enum UnixProbe {
        /** A listener: the connect completed, or its queue of pending connections is full ({@code EAGAIN}). */
        LISTENING,
        /** A socket file nobody listens on ({@code ECONNREFUSED}). */
        REFUSED,
        /** No file there ({@code ENOENT}). */
        ABSENT
    }

    /**
     * Whether anything listens on the unix socket {@code path}, by a non-blocking connect that is closed at once:
     * never waits, even for a hung listener, and tells the cases apart by errno, not by the JDK's localized message.
     * Any other failure (a path through a file, no permission) is thrown, naming the path; a file that is not a
     * socket is {@link UnixProbe#REFUSED}, as the kernel answers.
     */
    public static UnixProbe probeUnix(Path path) throws IOException {
        byte[] name = unixPath(path);
        int fd = unixSocket(path);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int rc = (int) CONNECT.invokeExact(state, fd, unixAddress(arena, name), (int) SOCKADDR_UN_SIZE);
            int errno = rc == 0 ? 0 : (int) ERRNO.get(state, 0L);
            if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS) {
                return UnixProbe.LISTENING;
            }
            if (errno == ECONNREFUSED) {
                return UnixProbe.REFUSED;
            }
            if (errno == ENOENT) {
                return UnixProbe.ABSENT;
            }
            check(rc, state, "connect to " + path);
            throw new IllegalStateException("connect to " + path + " failed without an errno");
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        } finally {
            close(fd);
        }
    }

    /** {@code accept4} on a non-blocking listener: a non-blocking, close-on-exec connection, or -1 if none waits. */
    public static int acceptNow(int listener) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int fd = (int) ACCEPT4.invokeExact(state, listener, MemorySegment.NULL, MemorySegment.NULL,
                    SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0 && (int) ERRNO.get(state, 0L) == EAGAIN) {
                return -1;
            }
            check(fd, state, "accept on fd " + listener);
            return fd;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * Receives one descriptor passed with {@code SCM_RIGHTS} on a non-blocking connection ({@code recvmsg},
     * close-on-exec): the descriptor, or -1 when none is there now. Any further descriptor in the message is closed;
     * a message whose descriptors did not fit is refused (and what did arrive closed).
     */
    public static int receiveFd(int connection) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment data = arena.allocate(256);
            MemorySegment iov = arena.allocate(16, 8);
            iov.set(ValueLayout.ADDRESS, 0, data);
            iov.set(ValueLayout.JAVA_LONG, 8, data.byteSize());
            MemorySegment control = arena.allocate(CONTROL_SIZE, 8);
            MemorySegment message = arena.allocate(MSGHDR_SIZE, 8);
            message.set(ValueLayout.ADDRESS, 16, iov);
            message.set(ValueLayout.JAVA_LONG, 24, 1);
            message.set(ValueLayout.ADDRESS, 32, control);
            message.set(ValueLayout.JAVA_LONG, 40, CONTROL_SIZE);
            long n = (long) RECVMSG.invokeExact(state, connection, message, MSG_CMSG_CLOEXEC);
            if (n < 0) {
                int errno = (int) ERRNO.get(state, 0L);
                if (errno == EAGAIN || errno == EINTR) {
                    return -1;
                }
                throw new ErrnoException("recvmsg on fd " + connection, errno);
            }
            List<Integer> received = new ArrayList<>(1);
            long controlLength = message.get(ValueLayout.JAVA_LONG, 40);
            for (long at = 0; at + CMSG_HEADER <= controlLength; ) {
                long length = control.get(ValueLayout.JAVA_LONG, at);
                if (length < CMSG_HEADER || at + length > controlLength) {
                    break;
                }
                if (control.get(ValueLayout.JAVA_INT, at + 8) == SOL_SOCKET
                        && control.get(ValueLayout.JAVA_INT, at + 12) == SCM_RIGHTS) {
                    for (long fd = at + CMSG_HEADER; fd + 4 <= at + length; fd += 4) {
                        received.add(control.get(ValueLayout.JAVA_INT, fd));
                    }
                }
                at += (length + 7) & ~7L;
            }
            boolean truncated = (message.get(ValueLayout.JAVA_INT, 48) & MSG_CTRUNC) != 0;
            if (truncated || received.isEmpty()) {
                received.forEach(LinuxCalls::close);
                if (truncated) {
                    throw new IOException("recvmsg on fd " + connection + ": the passed descriptors were truncated");
                }
                return -1;
            }
            received.subList(1, received.size()).forEach(LinuxCalls::close);
            return received.getFirst();
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Sets {@code O_NONBLOCK} on the open file {@code fd}. */
    public static void setNonBlocking(int fd) throws IOException {
        int flags = (int) call("fcntl F_GETFL fd " + fd, (arena, state) -> (int) FCNTL.invokeExact(state, fd, F_GETFL,
                0));
        call("fcntl F_SETFL fd " + fd, (arena, state) -> (int) FCNTL.invokeExact(state, fd, F_SETFL,
                flags | O_NONBLOCK));
    }

    /** {@code TIOCSWINSZ}: the terminal of {@code fd} is now {@code columns} by {@code rows}. */
    public static void setWindowSize(int fd, int columns, int rows) throws IOException {
        call("ioctl TIOCSWINSZ fd " + fd, (arena, state) -> {
            MemorySegment size = arena.allocate(8, 2);
            size.set(ValueLayout.JAVA_SHORT, 0, (short) rows);
            size.set(ValueLayout.JAVA_SHORT, 2, (short) columns);
            return (int) IOCTL_POINTER.invokeExact(state, fd, TIOCSWINSZ, size);
        });
    }

    private static void check(int result, MemorySegment state, String call) throws ErrnoException {
        if (result < 0) {
            throw new ErrnoException(call, (int) ERRNO.get(state, 0L));
        }
    }

    private static String describe(int errno) {
        try {
            MemorySegment message = (MemorySegment) STRERROR.invokeExact(errno);
            return message.reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "error " + errno;
        }
    }

    private static MethodHandle function(String name, FunctionDescriptor descriptor) {
        return downcall(name, descriptor, CAPTURE_ERRNO);
    }

    /** libc's {@code name}, linked on its first call (see {@link LazyDowncall}). */
    private static MethodHandle downcall(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        MethodType type = descriptor.toMethodType();
        if (Arrays.asList(options).contains(CAPTURE_ERRNO)) {
            type = type.insertParameterTypes(0, MemorySegment.class);
        }
        return LazyDowncall.of(type, () -> LINKER.downcallHandle(LINKER.defaultLookup().find(name)
                .orElseThrow(() -> new IllegalStateException("libc has no " + name)), descriptor, options));
    }
}
