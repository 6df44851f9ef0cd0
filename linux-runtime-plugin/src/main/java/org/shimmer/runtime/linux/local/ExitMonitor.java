package org.shimmer.runtime.linux.local;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.shimmer.runtime.linux.sys.Bell;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.shimmer.runtime.shim.ExitStatus;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;

/**
 * Learns how container processes exit, from inside the JVM.
 *
 * <p>After {@code runc create} the container's init is no longer our child; this monitor makes the JVM a child
 * subreaper, so init (and a detached exec) is re-parented to us. It then watches each pid it is given through a
 * pidfd, on one poll thread, and reaps exactly that pid with {@code waitid(P_PIDFD)}.
 *
 * <p>Invariants: never {@code waitpid(-1)}: the JDK reaps its own {@code ProcessBuilder} children by pid, and they
 * must keep their exit codes; a watched pid's exit is never lost, even when it happens before anyone asks (the
 * pidfd is opened while the process exists, and a zombie child still has one); orphans a container leaves to us
 * are reaped — zombie children of the JVM whose {@code NSpid} shows a nested pid namespace and which are not a
 * namespace's init — but never while a launch is in flight, whose pid we may not know yet.
 */
public final class ExitMonitor implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(ExitMonitor.class);
    private static final int REAP_INTERVAL_MILLIS = 1000;

    private final Queue<Watch> added = new ConcurrentLinkedQueue<>();
    private final Map<Integer, Watch> watched = new ConcurrentHashMap<>();
    private final AtomicInteger launching = new AtomicInteger();
    private final java.util.concurrent.atomic.AtomicLong launches = new java.util.concurrent.atomic.AtomicLong();
    private final AtomicBoolean closed = new AtomicBoolean();
    private final int selfPid = (int) ProcessHandle.current().pid();
    private final Bell bell;
    private final Thread thread;

    /** Makes the JVM a child subreaper and starts the poll thread. */
    public ExitMonitor(String threadName) throws IOException {
        LinuxCalls.becomeChildSubreaper();
        this.bell = new Bell();
        this.thread = Thread.ofPlatform().name(threadName).daemon(true).start(this::loop);
    }

    /**
     * Marks a launch in flight (a {@code runc create} or {@code exec} whose pid is not known yet): orphan reaping
     * waits until {@link #launched()}.
     */
    public void launching() {
        launching.incrementAndGet();
        launches.incrementAndGet();
    }

    /** Ends what {@link #launching()} began. */
    public void launched() {
        launching.decrementAndGet();
    }

    /**
     * Watches {@code pid}, which must be our child, alive or a zombie. The returned {@code Mono} completes once,
     * with how it exited, and replays that to every subscriber.
     *
     * @throws IOException when the pid does not exist (it exited and was reaped by someone else)
     */
    public Mono<ExitStatus> watch(int pid) throws IOException {
        Watch existing = watched.get(pid);
        if (existing != null) {
            return existing.exit.asMono();
        }
        OwnedFd pidfd = OwnedFd.pidfd(pid);
        Watch watch = new Watch(pid, pidfd);
        watched.put(pid, watch);
        added.add(watch);
        bell.wake();
        return watch.exit.asMono();
    }

    /**
     * Signals a watched process through its pidfd, so a pid recycled after the exit can never be hit.
     *
     * @return false when the process is not watched or was already reaped
     */
    public boolean signal(int pid, int signal) throws IOException {
        Watch watch = watched.get(pid);
        if (watch == null) {
            return false;
        }
        if (watch.done) {
            return false;
        }
        try {
            // Once reaped, the pidfd is closed and its number never used again.
            return watch.pidfd.use(pidfd -> {
                LinuxCalls.pidfdSendSignal(pidfd, signal);
                return true;
            });
        } catch (OwnedFd.ClosedException reaped) {
            return false;
        } catch (LinuxCalls.ErrnoException e) {
            if (e.errno() == LinuxCalls.ESRCH) {
                return false;
            }
            throw e;
        }
    }

    /** Whether {@code pid} is watched and has not exited yet. */
    public boolean isRunning(int pid) {
        Watch watch = watched.get(pid);
        return watch != null && !watch.done;
    }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            bell.wake();
            try {
                thread.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private void loop() {
        List<Watch> polled = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LinuxCalls.allocateCallState(arena);
            MemorySegment bellBuffer = arena.allocate(ValueLayout.JAVA_LONG);
            MemorySegment fds = arena.allocate(LinuxCalls.POLLFD, 1);
            int capacity = 1;
            while (!closed.get()) {
                for (Watch watch; (watch = added.poll()) != null; ) {
                    polled.add(watch);
                }
                if (polled.size() + 1 > capacity) {
                    capacity = Math.max(polled.size() + 1, capacity * 2);
                    fds = arena.allocate(LinuxCalls.POLLFD, capacity);
                }
                LinuxCalls.setPollFd(fds, 0, bell.pollNumber(), LinuxCalls.POLLIN);
                for (int i = 0; i < polled.size(); i++) {
                    LinuxCalls.setPollFd(fds, i + 1, polled.get(i).pidfd.pollNumber(), LinuxCalls.POLLIN);
                }
                int ready = LinuxCalls.poll(fds, polled.size() + 1, REAP_INTERVAL_MILLIS, state);
                if (ready > 0 && LinuxCalls.pollRevents(fds, 0) != 0) {
                    bell.silence(bellBuffer, state);
                }
                boolean anyExit = false;
                for (int i = polled.size() - 1; i >= 0; i--) {
                    if (ready > 0 && LinuxCalls.pollRevents(fds, i + 1) != 0) {
                        reap(polled.remove(i));
                        anyExit = true;
                    }
                }
                if (anyExit || ready == 0) {
                    reapOrphans();
                }
            }
        } catch (IOException | RuntimeException e) {
            log.error("the exit monitor failed; exits are no longer reported", e);
        } finally {
            for (Watch watch : polled) {
                watch.pidfd.close();
            }
            for (Watch watch; (watch = added.poll()) != null; ) {
                watch.pidfd.close();
            }
            bell.close();
        }
    }

    private void reap(Watch watch) {
        ExitStatus status;
        try {
            LinuxCalls.ChildExit exit = watch.pidfd.use(pidfd -> LinuxCalls.waitPidfd(pidfd, LinuxCalls.WEXITED));
            status = new ExitStatus(watch.pid, exit.exitStatus(), Instant.now());
        } catch (LinuxCalls.ErrnoException e) {
            // Not our child (the JVM that started it is gone): the status is unknowable. containerd reports
            // 137 for such exits, and so do we.
            log.warn("exit status of pid {} is unknown ({}); reporting 137", watch.pid, e.getMessage());
            status = new ExitStatus(watch.pid, 137, Instant.now());
        } catch (IOException e) {
            status = new ExitStatus(watch.pid, 137, Instant.now());
        }
        watch.done = true;
        watch.pidfd.close();
        watched.remove(watch.pid);
        watch.exit.tryEmitValue(status);
    }

    /** Reaps zombie children of the JVM that a container left behind; see the class invariants. */
    private void reapOrphans() {
        long generation = launches.get();
        if (launching.get() > 0) {
            return;
        }
        try (DirectoryStream<Path> processes = Files.newDirectoryStream(Path.of("/proc"),
                entry -> entry.getFileName().toString().chars().allMatch(Character::isDigit))) {
            for (Path process : processes) {
                int pid = Integer.parseInt(process.getFileName().toString());
                if (watched.containsKey(pid) || !isOrphanedContainerZombie(process)) {
                    continue;
                }
                // A launch that began during the scan may own this zombie and not have watched it yet.
                if (launching.get() > 0 || launches.get() != generation) {
                    return;
                }
                try {
                    LinuxCalls.waitPid(pid, LinuxCalls.WEXITED | LinuxCalls.WNOHANG);
                    log.debug("reaped orphan {}", pid);
                } catch (IOException gone) {
                    // Reaped meanwhile, or not ours after all.
                }
            }
        } catch (IOException | RuntimeException e) {
            log.debug("orphan scan failed", e);
        }
    }

    private boolean isOrphanedContainerZombie(Path process) {
        try {
            String status = Files.readString(process.resolve("status"));
            int ppid = -1;
            String state = "";
            String nspid = "";
            for (String line : status.split("\n")) {
                if (line.startsWith("PPid:")) {
                    ppid = Integer.parseInt(line.substring(5).strip());
                } else if (line.startsWith("State:")) {
                    state = line.substring(6).strip();
                } else if (line.startsWith("NSpid:")) {
                    nspid = line.substring(6).strip();
                }
            }
            String[] nested = nspid.split("\\s+");
            return ppid == selfPid && state.startsWith("Z") && nested.length > 1 && !nested[nested.length - 1]
                    .equals("1");
        } catch (IOException | RuntimeException gone) {
            return false;
        }
    }

    /** One watched pid. */
    private static final class Watch {
        final int pid;
        final OwnedFd pidfd;
        final Sinks.One<ExitStatus> exit = Sinks.one();
        volatile boolean done;

        Watch(int pid, OwnedFd pidfd) {
            this.pid = pid;
            this.pidfd = pidfd;
        }
    }
}
