package org.shimmer.runtime.linux.runc;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;

/**
 * What {@code runc start} of a created container does (runc 1.0/1.1), in the JVM: a created init blocks opening
 * {@code <root>/<id>/exec.fifo} for writing; once a reader opens it, init writes one byte and execs the user's
 * program. We move the FIFO to a name of our own, open it there without blocking (a blocking open would hang
 * forever if init died) and remove it, then wait until it is readable or init is gone (its pidfd) and read the
 * byte. It saves a Go process per start (~7 ms on the machine, a third of {@code runc run}).
 *
 * <p>Only for a state directory exactly as runc made it: the caller asks runc otherwise.
 */
final class CreatedStart {

    /** How long init may take to write its byte once we opened the FIFO; runc waits forever. */
    static final Duration BOUND = Duration.ofSeconds(10);

    private static final String FIFO = "exec.fifo";
    /** Where the FIFO is while we open it: a name runc's status check never looks at. */
    private static final String SET_ASIDE = ".exec.fifo.starting";
    private static final int S_IFMT = 0170000;
    private static final int S_IFIFO = 0010000;

    /** Why the start did not happen, in runc's words (so its type and message stay what {@code runc start} gave). */
    static final class Refused extends Exception {
        Refused(String why) {
            super(why, null, false, false);
        }
    }

    private CreatedStart() {}

    /**
     * Whether {@code containerDir} holds runc's exec FIFO as runc made it: a directory, not a link, with a FIFO,
     * not a link, in it. Blocking.
     */
    static boolean admits(Path containerDir) throws IOException {
        if (!Files.isDirectory(containerDir, LinkOption.NOFOLLOW_LINKS)) {
            return false;
        }
        try {
            int mode = (Integer) Files.getAttribute(containerDir.resolve(FIFO), "unix:mode", LinkOption.NOFOLLOW_LINKS);
            return (mode & S_IFMT) == S_IFIFO;
        } catch (NoSuchFileException e) {
            return false;
        }
    }

    /**
     * Lets the created init {@code pid} run its program. Blocking, at most {@link #BOUND}.
     *
     * @return false when nothing was done and runc must start it: init's pidfd or the FIFO could not be opened
     * @throws Refused when init is gone without having been started, in runc's words
     */
    static boolean start(Path containerDir, int pid) throws IOException, Refused {
        return start(containerDir, pid, () -> {});
    }

    /**
     * {@link #start(Path, int)}, running {@code initMayRun} once init may run its program and before this waits for
     * its byte: where a JVM killed mid-start stops (tests stall it there).
     */
    static boolean start(Path containerDir, int pid, Runnable initMayRun) throws IOException, Refused {
        Path fifo = containerDir.resolve(FIFO);
        OwnedFd init;
        try {
            init = OwnedFd.pidfd(pid);
        } catch (LinuxCalls.ErrnoException e) {
            if (e.errno() == LinuxCalls.ESRCH) {
                throw new Refused("cannot start a container that has stopped");
            }
            return false;
        }
        try (init; Arena arena = Arena.ofConfined()) {
            MemorySegment state = LinuxCalls.allocateCallState(arena);
            // runc's status check: an init that already ended (a zombie: its pidfd may not say so while its
            // threads still die) is a stopped container, not one to start.
            if (init.awaitReadable(Duration.ZERO) || ended(pid)) {
                throw new Refused("cannot start a container that has stopped");
            }
            // runc's name for the FIFO goes before init can run: the name is what tells runc a container is created
            // rather than running. Removed only once our reader was open, a JVM stalled or killed in between left a
            // container running its program that runc called created for good, and a delete without force then
            // killed it (the CLI's killed-run test saw it under load). So the FIFO is set aside under a name runc
            // never looks at, opened there, then removed; one that cannot be opened gets its name back, and runc
            // starts it. Killed between the rename and the open, init stays blocked in its open: a running
            // container whose program never ran, which kill and delete still end.
            Path aside = containerDir.resolve(SET_ASIDE);
            try {
                Files.move(fifo, aside, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException e) {
                // Gone (another start took it meanwhile) or not ours to move: runc answers for it.
                return false;
            }
            OwnedFd reader;
            try {
                reader = OwnedFd.open(aside, LinuxCalls.O_RDONLY | LinuxCalls.O_NONBLOCK | LinuxCalls.O_NOFOLLOW
                        | LinuxCalls.O_CLOEXEC);
            } catch (IOException e) {
                try {
                    Files.move(aside, fifo, StandardCopyOption.ATOMIC_MOVE);
                } catch (IOException notRestored) {
                    notRestored.addSuppressed(e);
                    throw notRestored;
                }
                return false;
            }
            // Init reopens the FIFO through its own descriptor of it: no name is needed any more.
            try (reader) {
                initMayRun.run();
                try {
                    Files.deleteIfExists(aside);
                } catch (IOException leftOver) {
                    // Harmless: runc never looks at this name, and its delete removes the whole directory. Failing
                    // here would close our end before init wrote its byte, and kill it with EPIPE.
                }
                awaitByte(reader, init, state, arena);
            }
            return true;
        }
    }

    /** Whether {@code pid} is gone or a zombie, from {@code /proc/<pid>/stat} as runc reads it. */
    private static boolean ended(int pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Integer.toString(pid), "stat"));
            // The state follows the command name in parentheses, which may itself hold any character.
            char state = stat.charAt(stat.lastIndexOf(')') + 2);
            return state == 'Z' || state == 'X';
        } catch (IOException gone) {
            return true;
        }
    }

    /** Until the FIFO gives init's byte; init's end without it is a dead container, as runc says. */
    private static void awaitByte(OwnedFd reader, OwnedFd init, MemorySegment state, Arena arena)
            throws IOException, Refused {
        MemorySegment fds = arena.allocate(LinuxCalls.POLLFD, 2);
        MemorySegment buffer = arena.allocate(1);
        long deadline = System.nanoTime() + BOUND.toNanos();
        while (true) {
            // Read first: init may have written, exec'd and exited before we looked; its byte still counts. Before
            // init opened its end, a read finds no writer (0) and poll waits: only a writer that came and went
            // (POLLHUP) or init's end (its pidfd) means the byte will never come.
            if (reader.read(buffer, state) > 0) {
                return;
            }
            if (LinuxCalls.pollRevents(fds, 1) != 0 || (LinuxCalls.pollRevents(fds, 0) & LinuxCalls.POLLHUP) != 0) {
                throw new Refused("container process is already dead");
            }
            long left = OwnedFd.millisLeft(deadline, System.nanoTime());
            if (left < 0) {
                throw new IOException("init " + init + " did not open " + FIFO + " within " + BOUND.toSeconds()
                        + " s");
            }
            LinuxCalls.setPollFd(fds, 0, reader.pollNumber(), LinuxCalls.POLLIN);
            LinuxCalls.setPollFd(fds, 1, init.pollNumber(), LinuxCalls.POLLIN);
            LinuxCalls.poll(fds, 2, (int) Math.min(left, Integer.MAX_VALUE), state);
        }
    }
}
