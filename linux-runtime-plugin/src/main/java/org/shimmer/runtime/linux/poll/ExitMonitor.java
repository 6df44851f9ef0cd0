package org.shimmer.runtime.linux.poll;

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
import java.util.concurrent.atomic.AtomicLong;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.sys.Bell;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.shimmer.runtime.shim.ExitStatus;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;

/**
 * Learns how processes exit, from inside the JVM: container processes of the local shim, and remote shim daemons.
 *
 * <p>Each pid it is given is watched through a pidfd, on one poll thread. A container's init is no longer our
 * child after {@code runc create}; {@link #adoptOrphans()} makes the JVM a child subreaper, so init (and a detached
 * exec) is re-parented to us, and reaps exactly that pid with {@code waitid(P_PIDFD)}. A remote shim daemon is
 * re-parented to us as well once the JVM is a subreaper (its parent, {@code shim start}, exits at once): it became
 * a zombie nobody reaped (issue 9, 300 lifecycles left 300 zombies), so {@link #watchAny} reaps it through its
 * pidfd too when it is our child.
 *
 * <p>Invariants: never {@code waitpid(-1)}: the JDK reaps its own {@code ProcessBuilder} children by pid, and they
 * must keep their exit codes. A pid is reaped only when we positively know it is not such a child: it was handed
 * to {@link #watch}/{@link #watchAny} while it was a container process or the shim that answered our connection
 * (its pidfd then names that process and no other, even after the pid is recycled), or it is a zombie whose
 * {@code NSpid} shows a nested pid namespace (the JDK never starts a child in another pid namespace). A watched
 * pid's exit is never lost, even when it happens before anyone asks (the pidfd is opened while the process
 * exists, and a zombie still has one). Orphans a container leaves to us are reaped — zombie children of the JVM
 * in a nested pid namespace that are not a namespace's init (those a reloaded plugin may still want to watch) —
 * but never while a launch is in flight, whose pid we may not know yet. Closing the monitor is not an exit: no
 * watch completes then.
 */
public final class ExitMonitor implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(ExitMonitor.class);
    private static final int REAP_INTERVAL_MILLIS = 1000;

    private final Queue<Watch> added = new ConcurrentLinkedQueue<>();
    private final Map<Integer, Watch> watched = new ConcurrentHashMap<>();
    private final AtomicInteger launching = new AtomicInteger();
    private final AtomicLong launches = new AtomicLong();
    private final AtomicBoolean closed = new AtomicBoolean();
    private final AtomicBoolean adopting = new AtomicBoolean();
    private final int selfPid = (int) ProcessHandle.current().pid();
    private final Bell bell;
    private final Thread thread;

    /** Starts the poll thread. */
    public ExitMonitor(String threadName) throws IOException {
        this.bell = new Bell();
        this.thread = Thread.ofPlatform().name(threadName).daemon(true).start(this::loop);
    }

    /**
     * Makes the JVM a child subreaper, so container processes stay ours to watch, and from then on reaps the
     * orphans containers leave (see the class invariants). Idempotent.
     */
    public void adoptOrphans() throws IOException {
        if (adopting.compareAndSet(false, true)) {
            try {
                LinuxCalls.becomeChildSubreaper();
            } catch (IOException | RuntimeException e) {
                adopting.set(false);
                throw e;
            }
        }
    }

    /**
     * Marks a launch in flight (a {@code runc create} or {@code exec} whose pid is not known yet): orphan reaping
     * waits until the returned launch is closed. Close it on every outcome, a cancel included (issue 10: a create
     * cancelled between the two left reaping stopped for good); closing twice is harmless.
     */
    public Launch launch() {
        launching.incrementAndGet();
        launches.incrementAndGet();
        return new Launch();
    }

    /** One launch in flight; see {@link #launch()}. */
    public final class Launch implements AutoCloseable {
        private final AtomicBoolean ended = new AtomicBoolean();

        private Launch() {}

        @Override
        public void close() {
            if (ended.compareAndSet(false, true)) {
                launching.decrementAndGet();
            }
        }
    }

    /**
     * Watches {@code pid}, which must be our child, alive or a zombie. The returned {@code Mono} completes once,
     * with how it exited, and replays that to every subscriber.
     *
     * @throws IOException when the pid does not exist (it exited and was reaped by someone else)
     */
    public Mono<ExitStatus> watch(int pid) throws IOException {
        return open(pid, true).exit.asMono();
    }

    /**
     * Watches {@code pid}, which need not be our child: the returned {@code Mono} completes once the process is
     * gone, and it is reaped here if it was our child. The caller must know that {@code pid} names the process it
     * means right now (a live connection to it, say): from then on the pidfd holds on to that process.
     *
     * @throws IOException when the pid does not exist
     */
    public Mono<Void> watchAny(int pid) throws IOException {
        return open(pid, false).exit.asMono().then();
    }

    /**
     * {@link #watchAny(int)} through a pidfd the caller opened and proved names the process it means (a shim that
     * answered after the pidfd existed): no pid number is looked up again. Takes ownership of {@code pidfd}.
     */
    public Mono<Void> watchAny(int pid, OwnedFd pidfd) throws IOException {
        return open(pid, pidfd, false).exit.asMono().then();
    }

    /**
     * Reaps {@code pid} once it exits if it is a container process the JVM adopted: our child, in a nested pid
     * namespace (never a {@code ProcessBuilder} child). For the init of a remote task whose shim died: it is
     * re-parented to the subreaper JVM, and the orphan scan leaves namespace inits alone.
     */
    public void reapIfAdopted(int pid) throws IOException {
        if (pid > 0 && isAdoptedContainerProcess(Path.of("/proc", Integer.toString(pid)), false)) {
            open(pid, false);
        }
    }

    // Check-then-act under one lock: two watches of one pid must share one pidfd, or the second waitid would find
    // nothing to reap and report a fake status.
    private Watch open(int pid, boolean child) throws IOException {
        OwnedFd pidfd = OwnedFd.pidfd(pid);
        try {
            return open(pid, pidfd, child);
        } catch (IOException | RuntimeException e) {
            pidfd.close();
            throw e;
        }
    }

    /** Takes {@code pidfd}: kept by the new watch, or closed when {@code pid} is watched already. */
    private synchronized Watch open(int pid, OwnedFd pidfd, boolean child) throws IOException {
        if (closed.get()) {
            throw new IOException("the exit monitor is closed; pid " + pid + " cannot be watched");
        }
        Watch existing = watched.get(pid);
        if (existing != null) {
            pidfd.close();
            return existing;
        }
        Watch watch = new Watch(pid, pidfd, child);
        watched.put(pid, watch);
        added.add(watch);
        bell.wake();
        return watch;
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
        // Rings under the lock that open() holds while it rings and the loop holds while it closes the bell: no
        // ring can reach a closed (and perhaps reused) descriptor.
        boolean first;
        synchronized (this) {
            first = closed.compareAndSet(false, true);
            if (first) {
                bell.wake();
            }
        }
        if (first) {
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
            // Whoever still waits learns that nobody watches any more, rather than waiting forever: the process
            // runs on, and a runtime that reattaches reports its exit.
            for (Watch watch : polled) {
                release(watch);
                unwatched(watch);
            }
            for (Watch watch; (watch = added.poll()) != null; ) {
                release(watch);
                unwatched(watch);
            }
            synchronized (this) {
                bell.close();
            }
        }
    }

    private void reap(Watch watch) {
        ExitStatus status;
        try {
            LinuxCalls.ChildExit exit = watch.pidfd.use(pidfd -> LinuxCalls.waitPidfd(pidfd, LinuxCalls.WEXITED));
            status = new ExitStatus(watch.pid, exit.exitStatus(), Instant.now());
        } catch (LinuxCalls.ErrnoException notOurChild) {
            // A container whose JVM is gone, or a shim orphaned while the JVM was no subreaper: its status is
            // unknowable. containerd reports 137 for such exits, and so do we; only a container's is worth a word.
            if (watch.child) {
                log.warn("exit status of pid {} is unknown ({}); reporting 137", watch.pid, notOurChild.getMessage());
            }
            status = new ExitStatus(watch.pid, 137, Instant.now());
        } catch (IOException e) {
            status = new ExitStatus(watch.pid, 137, Instant.now());
        }
        release(watch);
        watched.remove(watch.pid);
        watch.exit.tryEmitValue(status);
    }

    private static void unwatched(Watch watch) {
        watch.exit.tryEmitError(new UnavailableException("the runtime stopped while pid " + watch.pid
                + " still ran; reattach to learn its exit"));
    }

    // The pidfd refuses use once closed (and its number perhaps reused), so a racing signal() is safe.
    private static void release(Watch watch) {
        watch.done = true;
        watch.pidfd.close();
    }

    /** Reaps zombie children of the JVM that a container left behind; see the class invariants. */
    private void reapOrphans() {
        long generation = launches.get();
        if (!adopting.get() || launching.get() > 0) {
            return;
        }
        try (DirectoryStream<Path> processes = Files.newDirectoryStream(Path.of("/proc"),
                entry -> entry.getFileName().toString().chars().allMatch(Character::isDigit))) {
            for (Path process : processes) {
                int pid = Integer.parseInt(process.getFileName().toString());
                if (watched.containsKey(pid) || !isAdoptedContainerProcess(process, true)) {
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

    /**
     * Whether {@code process} is our child in a nested pid namespace; with {@code orphanZombie}, also a zombie and
     * not a namespace's init.
     */
    private boolean isAdoptedContainerProcess(Path process, boolean orphanZombie) {
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
            boolean adopted = ppid == selfPid && nested.length > 1;
            return orphanZombie
                    ? adopted && state.startsWith("Z") && !nested[nested.length - 1].equals("1")
                    : adopted;
        } catch (IOException | RuntimeException gone) {
            return false;
        }
    }

    /** One watched pid. */
    private static final class Watch {
        final int pid;
        final OwnedFd pidfd;
        final boolean child;
        final Sinks.One<ExitStatus> exit = Sinks.one();
        volatile boolean done;

        Watch(int pid, OwnedFd pidfd, boolean child) {
            this.pid = pid;
            this.pidfd = pidfd;
            this.child = child;
        }
    }
}
