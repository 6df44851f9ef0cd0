package org.shimmer.runtime.linux.poll;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.sys.Bell;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.shimmer.runtime.linux.sys.Procfs;
import org.shimmer.runtime.shim.ExitStatus;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;

/**
 * Learns how processes exit, from inside the JVM: container processes of the local shim, and remote shim daemons.
 *
 * <p>Each pid it is given is watched through a pidfd registered with the runtime's {@link PollLoop}. A container's
 * init is no longer our child after {@code runc create}; {@link #adoptOrphans()} makes the JVM a child subreaper,
 * so init (and a detached exec) is re-parented to us, and reaps exactly that pid with {@code waitid(P_PIDFD)}. A
 * remote shim daemon is re-parented to us as well once the JVM is a subreaper (its parent, {@code shim start},
 * exits at once): it became a zombie nobody reaped (issue 9, 300 lifecycles left 300 zombies), so {@link #watchAny}
 * reaps it through its pidfd too when it is our child.
 *
 * <p>Invariants: never {@code waitpid(-1)}: the JDK reaps its own {@code ProcessBuilder} children by pid, and they
 * must keep their exit codes. A pid is reaped only when we positively know it is not such a child: it was handed
 * to {@link #watch}/{@link #watchAny} while it was a container process or the shim that answered our connection
 * (its pidfd then names that process and no other, even after the pid is recycled), or it is a zombie whose
 * {@code NSpid} shows a nested pid namespace (the JDK never starts a child in another pid namespace) or, in the
 * host's, whose session is that of a container process watched here (the JDK's children stay in the JVM's), or a
 * runc bootstrap stage, or a member of a watched daemon's process group that does not lead it. A watched
 * pid's exit is never lost, even when it happens before anyone asks (the pidfd is opened while the process
 * exists, and a zombie still has one). A watched process that was not our child when it exited (a shim daemon
 * killed while {@code shim start}, its parent, still ran; a container init killed under its live shim) may become
 * our zombie later, when its parent dies: its watch reports the exit at once but keeps the pidfd, and reaps it
 * through that pidfd once it is ours, or lets go once someone else reaped it (a CI run left such a zombie for
 * good). Orphans a container leaves to us are reaped — zombie children of the JVM
 * in a nested pid namespace that are not a namespace's init (those a reloaded plugin may still want to watch) —
 * but never while a launch is in flight, whose pid we may not know yet, nor while any monitor of this class loader
 * watches them. Closing the monitor is not an exit: no watch completes then.
 *
 * <p>Orphans are looked for when {@code SIGCHLD} arrives, a watched process exits, or the last launch in flight
 * ends, and only among the children the JVM adopted ({@link Procfs#adoptedChildren()}): an idle monitor reads
 * nothing. It used to read every process's {@code /proc/<pid>/status} once a second (issue 10).
 */
public final class ExitMonitor implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(ExitMonitor.class);

    // Process-wide, as the subreaper and its children are: with two runtimes in one JVM (a reloaded plugin, a
    // test's second host), one monitor's orphan scan must not reap a zombie that the other watches or launched.
    private static final Map<Integer, Integer> WATCHED_ANYWHERE = new ConcurrentHashMap<>();
    private static final AtomicInteger LAUNCHING = new AtomicInteger();
    private static final AtomicLong LAUNCHES = new AtomicLong();
    private static final Set<Bell> ADOPTING = ConcurrentHashMap.newKeySet();
    /**
     * The sessions of the container processes watched here, the most recent {@value #REMEMBERED_SESSIONS}: runc
     * makes each container's init a session leader, so an orphan of a container in the host's pid namespace, which
     * shows no nested {@code NSpid}, is told from the JDK's children by its session (issue 9's review: such orphans
     * stayed zombies for the JVM's life). Never the JVM's own session, which the JDK's children share; and a zombie
     * that leads its session is never taken for an orphan (a host child that made a session of its own on a
     * recycled pid). A cgroup would not do: a zombie shows none but the root's.
     */
    private static final Set<Integer> CONTAINER_SESSIONS = Collections.newSetFromMap(Collections.synchronizedMap(
            new LinkedHashMap<>(16, 0.75f, true) {
                @Override
                protected boolean removeEldestEntry(Map.Entry<Integer, Boolean> eldest) {
                    return size() > REMEMBERED_SESSIONS;
                }
            }));
    private static final int REMEMBERED_SESSIONS = 1024;
    /**
     * The process groups of the daemons watched here ({@link #watchAny}: remote shims), the most recent
     * {@value #REMEMBERED_SESSIONS}. A shim leads its own group and its {@code runc} commands stay in it; one that
     * exits while a command of its still runs (a release racing an exec) leaves that command to us, a zombie in
     * the host's pid namespace and the JVM's session once killed (issue 9's review, again). The JDK's children
     * are in the JVM's group or lead their own, so a member of a shim's group that does not lead it is a shim's.
     */
    private static final Set<Integer> DAEMON_GROUPS = Collections.newSetFromMap(Collections.synchronizedMap(
            new LinkedHashMap<>(16, 0.75f, true) {
                @Override
                protected boolean removeEldestEntry(Map.Entry<Integer, Boolean> eldest) {
                    return size() > REMEMBERED_SESSIONS;
                }
            }));
    private static final int OWN_GROUP = Procfs.processGroupId((int) ProcessHandle.current().pid());
    private static final int OWN_SESSION = Procfs.sessionId((int) ProcessHandle.current().pid());
    /**
     * The names runc gives the first two processes of a {@code runc init} before the container's own: the stage-1
     * child is cloned as a sibling of stage 0, so it is the {@code runc} command's child, and the command reaps it
     * only once it read its pids from stage 0. A release that kills the container's cgroup while an exec is being
     * set up kills stage 0 first: runc gives up and exits, and its stage-1 zombie, in the host's pid namespace and
     * the JVM's session, came to us and stayed for the JVM's life. Nothing the JDK starts has these names, and no
     * monitor watches a bootstrap stage.
     */
    private static final Set<String> RUNC_BOOTSTRAP_STAGES = Set.of("runc:[0:PARENT]", "runc:[1:CHILD]");

    private final Map<Integer, Watch> watched = new ConcurrentHashMap<>();
    /** Exited, not our child when they exited, not reaped by anyone yet; see the class invariants. */
    private final Set<Watch> strays = ConcurrentHashMap.newKeySet();
    private final AtomicLong statusReads = new AtomicLong();
    /** Launches of this monitor not ended yet; see {@link Launch}. */
    private final Set<Launch> openLaunches = ConcurrentHashMap.newKeySet();
    private final int selfPid = (int) ProcessHandle.current().pid();
    private final PollLoop loop;
    private final Executor emitter;
    // Guarded by this.
    private boolean closed;
    private Bell childSignal;
    private PollLoop.Registration childSignalRegistration;
    private boolean signalled;
    private volatile boolean adopting;
    // Touched only on the poll thread.
    private final MemorySegment bellBuffer = Arena.ofAuto().allocate(ValueLayout.JAVA_LONG);
    private final MemorySegment callState = LinuxCalls.allocateCallState(Arena.ofAuto());

    /**
     * Watches on {@code loop}; exits are emitted through {@code emitter}, off the poll thread, so a subscriber
     * that blocks cannot stall every FIFO and pidfd of the runtime.
     */
    public ExitMonitor(PollLoop loop, Executor emitter) {
        this.loop = loop;
        this.emitter = emitter;
    }

    /**
     * Makes the JVM a child subreaper, so container processes stay ours to watch, and from then on reaps the
     * orphans containers leave (see the class invariants), woken by {@code SIGCHLD}. Idempotent.
     */
    public synchronized void adoptOrphans() throws IOException {
        if (closed) {
            throw new IOException("the exit monitor is closed; it adopts no orphans");
        }
        if (childSignal != null) {
            return;
        }
        LinuxCalls.becomeChildSubreaper();
        OwnedFd eventfd = OwnedFd.eventfd();
        childSignalRegistration = loop.register(eventfd, new PollLoop.Handler() {
            @Override
            public void ready(PollLoop.Registration self, short revents) {
                try {
                    eventfd.read(bellBuffer, callState);
                } catch (IOException e) {
                    log.warn("cannot reset the SIGCHLD bell", e);
                }
                reapOrphans();
            }
        });
        childSignal = new Bell(eventfd);
        ADOPTING.add(childSignal);
        try {
            ChildSignals.subscribe(childSignal);
            signalled = true;
        } catch (RuntimeException | LinkageError e) {
            // A JVM without jdk.unsupported, or one that keeps SIGCHLD to itself: reaping still follows every
            // watched exit and every launch's end, only an orphan whose exit follows neither waits for the next.
            log.warn("SIGCHLD cannot be caught; orphans are reaped after watched exits and launches only", e);
        }
        adopting = true;
        // Orphans that were there before the handler.
        childSignal.wake();
    }

    /**
     * Marks a launch in flight (a {@code runc create} or {@code exec} whose pid is not known yet): orphan reaping
     * waits until the returned launch is closed. Close it on every outcome, a cancel included (issue 10: a create
     * cancelled between the two left reaping stopped for good); closing twice is harmless.
     */
    public Launch launch() {
        LAUNCHING.incrementAndGet();
        LAUNCHES.incrementAndGet();
        Launch launch = new Launch(openLaunches);
        openLaunches.add(launch);
        return launch;
    }

    /**
     * One launch in flight; see {@link #launch()}. Closing the monitor ends those still open: a launch whose
     * operation can no longer end (the runtime stopped under it) must not hold reaping back for the next runtime.
     */
    public static final class Launch implements AutoCloseable {
        private final AtomicBoolean ended = new AtomicBoolean();
        private final Set<Launch> open;

        private Launch(Set<Launch> open) {
            this.open = open;
        }

        /** Ends the launch; the last one to end has the orphans looked for again (a scan it held back). */
        @Override
        public void close() {
            if (ended.compareAndSet(false, true)) {
                open.remove(this);
                if (LAUNCHING.decrementAndGet() == 0) {
                    ADOPTING.forEach(Bell::wake);
                }
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
        Mono<ExitStatus> exit = open(pid, true).exit.asMono();
        rememberSession(pid);
        return exit;
    }

    /**
     * {@link #watch(int)} of a pid read from disk after a restart, which may name another process by now: the init
     * ended while no runtime watched it, was reaped by whoever had inherited it, and its pid was given to a new
     * process. Watched only while the process at {@code pid} started at {@code startTicks} (clock ticks after boot,
     * as {@code /proc/<pid>/stat} says), checked once its pidfd is open, so the pidfd names that process and no
     * other.
     *
     * @throws IOException when the pid does not exist, or names a process that started at another time
     */
    public Mono<ExitStatus> watchStartedAt(int pid, long startTicks) throws IOException {
        Mono<ExitStatus> exit = openStartedAt(pid, startTicks).exit.asMono();
        rememberSession(pid);
        return exit;
    }

    private synchronized Watch openStartedAt(int pid, long startTicks) throws IOException {
        Watch existing = existingWatch(pid);
        if (existing != null) {
            // Watched here already: maybe a new container's process that got the pid; it started at its own time.
            requireStartedAt(pid, startTicks);
            return existing;
        }
        OwnedFd pidfd = OwnedFd.pidfd(pid);
        try {
            requireStartedAt(pid, startTicks);
        } catch (IOException e) {
            pidfd.close();
            throw e;
        }
        return add(pid, pidfd, true);
    }

    private static void requireStartedAt(int pid, long startTicks) throws IOException {
        long started = Procfs.startTicks(pid);
        if (started != startTicks) {
            throw new IOException(started < 0 ? "pid " + pid + " is gone"
                    : "pid " + pid + " names another process now (started at tick " + started + ", not "
                            + startTicks + ")");
        }
    }

    /** Remembers the session of {@code pid}, a container process, unless it is the JVM's own (see the field). */
    private static void rememberSession(int pid) {
        int session = Procfs.sessionId(pid);
        if (session > 0 && session != OWN_SESSION) {
            CONTAINER_SESSIONS.add(session);
        }
    }

    /**
     * Watches {@code pid}, which need not be our child: the returned {@code Mono} completes once the process is
     * gone, and it is reaped here if it was our child. The caller must know that {@code pid} names the process it
     * means right now (a live connection to it, say): from then on the pidfd holds on to that process.
     *
     * @throws IOException when the pid does not exist
     */
    public Mono<Void> watchAny(int pid) throws IOException {
        adoptIfSubreaper();
        Mono<Void> exit = open(pid, false).exit.asMono().then();
        rememberGroup(pid);
        return exit;
    }

    /**
     * {@link #watchAny(int)} through a pidfd the caller opened and proved names the process it means (a shim that
     * answered after the pidfd existed): no pid number is looked up again. Takes ownership of {@code pidfd}.
     */
    public Mono<Void> watchAny(int pid, OwnedFd pidfd) throws IOException {
        try {
            adoptIfSubreaper();
        } catch (IOException | RuntimeException e) {
            pidfd.close();
            throw e;
        }
        Mono<Void> exit = open(pid, pidfd, false).exit.asMono().then();
        rememberGroup(pid);
        return exit;
    }

    /** Remembers the group {@code pid} leads, a daemon's, unless it is the JVM's own (see the field). */
    private static void rememberGroup(int pid) {
        if (Procfs.processGroupId(pid) == pid && pid != OWN_GROUP) {
            DAEMON_GROUPS.add(pid);
        }
    }

    /**
     * Adopts orphans (see {@link #adoptOrphans()}) if the JVM is a subreaper already: the flag is process-wide and
     * outlives the runtime that set it, so after a plugin reload, or in a runtime that runs remote shims only, a
     * process watched here may become our zombie, and nothing but this monitor would ever reap it.
     */
    private void adoptIfSubreaper() throws IOException {
        if (!adopting && LinuxCalls.isChildSubreaper()) {
            adoptOrphans();
        }
    }

    /**
     * Reaps {@code pid} once it exits if it is a container process the JVM adopted: our child, in a nested pid
     * namespace (never a {@code ProcessBuilder} child). For the init of a remote task whose shim died: it is
     * re-parented to the subreaper JVM, and the orphan scan leaves namespace inits alone. Re-parented when its shim
     * died, it is ours then or never; the pid, read from the bundle, may since name another container's process,
     * which was watched while it lived when any parent would do.
     */
    public void reapIfAdopted(int pid) throws IOException {
        if (pid > 0 && isContainerProcess(pid) && Procfs.parentPid(pid) == selfPid) {
            open(pid, false);
        }
    }

    // Check-then-act under one lock, the pidfd opened inside it: twenty watches of one pid must share one pidfd,
    // or every waitid but the first finds nothing to reap and reports a fake 137 (issue 10).
    private synchronized Watch open(int pid, boolean child) throws IOException {
        Watch existing = existingWatch(pid);
        return existing != null ? existing : add(pid, OwnedFd.pidfd(pid), child);
    }

    /** Takes {@code pidfd}: kept by the new watch, or closed when {@code pid} is watched already. */
    private synchronized Watch open(int pid, OwnedFd pidfd, boolean child) throws IOException {
        Watch existing;
        try {
            existing = existingWatch(pid);
        } catch (IOException e) {
            pidfd.close();
            throw e;
        }
        if (existing != null) {
            pidfd.close();
            return existing;
        }
        return add(pid, pidfd, child);
    }

    private Watch existingWatch(int pid) throws IOException {
        if (closed) {
            throw new IOException("the exit monitor is closed; pid " + pid + " cannot be watched");
        }
        return watched.get(pid);
    }

    /** Registers a new watch, holding the lock; {@code pidfd} is the loop's from here on, closed if it refuses. */
    private Watch add(int pid, OwnedFd pidfd, boolean child) throws IOException {
        Watch watch = new Watch(pid, pidfd, child);
        watched.put(pid, watch);
        WATCHED_ANYWHERE.merge(pid, 1, Integer::sum);
        try {
            watch.registration = loop.register(pidfd, watch);
        } catch (IOException e) {
            forget(watch);
            throw e;
        }
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

    /** Closes every watch: their subscribers learn nobody watches any more (no watch completes as an exit). */
    @Override
    public void close() {
        List<Watch> watches;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            adopting = false;
            if (signalled) {
                ChildSignals.unsubscribe(childSignal);
            }
            if (childSignal != null) {
                ADOPTING.remove(childSignal);
                childSignalRegistration.close();
            }
            watches = new ArrayList<>(watched.values());
            watches.addAll(strays);
        }
        for (Watch watch : watches) {
            watch.registration.close();
        }
        List.copyOf(openLaunches).forEach(Launch::close);
    }

    /** How many {@code /proc/<pid>/status} files this monitor has read: what tests count to see it idle. */
    long statusReads() {
        return statusReads.get();
    }

    /**
     * Reaps the watched process, which has exited, and reports its exit; on the poll thread.
     *
     * @return false when it is a zombie of another parent still: the watch keeps its pidfd as a stray
     */
    private boolean reap(Watch watch) {
        ExitStatus status;
        boolean settled = true;
        try {
            LinuxCalls.ChildExit exit = watch.pidfd.use(pidfd -> LinuxCalls.waitPidfd(pidfd, LinuxCalls.WEXITED));
            status = new ExitStatus(watch.pid, exit.exitStatus(), Instant.now());
            if (!watch.child && exit.code() != LinuxCalls.CLD_EXITED) {
                // A shim daemon (or a process a bundle's cleanup killed) ended by a signal: who sent it is worth
                // a line (a SIGSTOPped shim died in CI with nothing else to tell why).
                log.info("watched pid {} was killed by signal {}", watch.pid, exit.status());
            }
        } catch (LinuxCalls.ErrnoException notOurChild) {
            // A container whose JVM is gone, or a process whose parent is another: its status is unknowable.
            // containerd reports 137 for such exits, and so do we; only a container's is worth a word.
            if (watch.child) {
                log.warn("exit status of pid {} is unknown ({}); reporting 137", watch.pid, notOurChild.getMessage());
            }
            status = new ExitStatus(watch.pid, 137, Instant.now());
            // Only a subreaper JVM can inherit it.
            settled = !adopting || !exists(watch);
        } catch (IOException e) {
            status = new ExitStatus(watch.pid, 137, Instant.now());
        }
        watch.done = true;
        forget(watch);
        ExitStatus exit = status;
        emit(() -> watch.exit.tryEmitValue(exit));
        return settled;
    }

    /** Whether the watched process still exists (alive or a zombie nobody reaped yet): its pidfd still signals. */
    private static boolean exists(Watch watch) {
        try {
            return watch.pidfd.use(pidfd -> {
                LinuxCalls.pidfdSendSignal(pidfd, 0);
                return true;
            });
        } catch (IOException gone) {
            return false;
        }
    }

    /**
     * Reaps the strays that became our zombies (their parent died and the subreaper JVM adopted them), and lets
     * go of those someone else reaped. Poll thread.
     */
    private void reapStrays() {
        for (Watch stray : List.copyOf(strays)) {
            boolean settled;
            try {
                LinuxCalls.ChildExit exit = stray.pidfd.use(pidfd -> LinuxCalls.waitPidfd(pidfd,
                        LinuxCalls.WEXITED | LinuxCalls.WNOHANG));
                settled = exit.pid() != 0 || !exists(stray);
                if (exit.pid() != 0) {
                    log.debug("reaped pid {}, adopted after its exit", stray.pid);
                }
            } catch (IOException notOurs) {
                settled = !exists(stray);
            }
            if (settled) {
                strays.remove(stray);
                stray.registration.close();
            }
        }
    }

    /** How many exited processes wait to be adopted and reaped, or reaped elsewhere: for tests. */
    int strays() {
        return strays.size();
    }

    /** The watch's pid may be reaped by an orphan scan from now on; call after the watch's own reap. */
    private void forget(Watch watch) {
        watched.remove(watch.pid, watch);
        WATCHED_ANYWHERE.computeIfPresent(watch.pid, (pid, count) -> count > 1 ? count - 1 : null);
    }

    private void emit(Runnable emission) {
        try {
            emitter.execute(emission);
        } catch (RejectedExecutionException stopping) {
            emission.run();
        }
    }

    /** Reaps zombie children of the JVM that a container left behind; see the class invariants. Poll thread. */
    private void reapOrphans() {
        // Strays first, and whatever launches are in flight: each is named by its own pidfd.
        reapStrays();
        long generation = LAUNCHES.get();
        if (LAUNCHING.get() > 0) {
            return;
        }
        try {
            for (int pid : Procfs.adoptedChildren()) {
                if (WATCHED_ANYWHERE.containsKey(pid) || !isOrphanZombie(pid)) {
                    continue;
                }
                // A launch that began during the scan may own this zombie and not have watched it yet.
                if (LAUNCHING.get() > 0 || LAUNCHES.get() != generation) {
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

    /** Whether {@code pid} is in a nested pid namespace, whoever its parent is. */
    private boolean isContainerProcess(int pid) {
        statusReads.incrementAndGet();
        try {
            for (String line : Files.readAllLines(Path.of("/proc", Integer.toString(pid), "status"))) {
                if (line.startsWith("NSpid:")) {
                    return line.substring(6).strip().split("\\s+").length > 1;
                }
            }
            return false;
        } catch (IOException | RuntimeException gone) {
            return false;
        }
    }

    /**
     * Whether {@code pid} is a zombie child of ours that a container left: in a nested pid namespace and not a
     * namespace's init, in the host's and in a container's session, one of runc's bootstrap stages, or a member
     * (not the leader) of a watched daemon's process group.
     */
    private boolean isOrphanZombie(int pid) {
        statusReads.incrementAndGet();
        try {
            String status = Files.readString(Path.of("/proc", Integer.toString(pid), "status"));
            int ppid = -1;
            String state = "";
            String nspid = "";
            String name = "";
            for (String line : status.split("\n")) {
                if (line.startsWith("Name:")) {
                    name = line.substring(5).strip();
                } else if (line.startsWith("PPid:")) {
                    ppid = Integer.parseInt(line.substring(5).strip());
                } else if (line.startsWith("State:")) {
                    state = line.substring(6).strip();
                } else if (line.startsWith("NSpid:")) {
                    nspid = line.substring(6).strip();
                }
            }
            String[] nested = nspid.split("\\s+");
            if (ppid != selfPid || !state.startsWith("Z")) {
                return false;
            }
            if (nested.length > 1) {
                return !nested[nested.length - 1].equals("1");
            }
            if (RUNC_BOOTSTRAP_STAGES.contains(name)) {
                return true;
            }
            int group = Procfs.processGroupId(pid);
            if (group != pid && DAEMON_GROUPS.contains(group)) {
                return true;
            }
            int session = Procfs.sessionId(pid);
            return session != pid && session != OWN_SESSION && CONTAINER_SESSIONS.contains(session);
        } catch (IOException | RuntimeException gone) {
            return false;
        }
    }

    /** One watched pid, and what the poll thread does when its pidfd fires or closes. */
    private final class Watch implements PollLoop.Handler {
        final int pid;
        final OwnedFd pidfd;
        final boolean child;
        final Sinks.One<ExitStatus> exit = Sinks.one();
        volatile PollLoop.Registration registration;
        volatile boolean done;

        Watch(int pid, OwnedFd pidfd, boolean child) {
            this.pid = pid;
            this.pidfd = pidfd;
            this.child = child;
        }

        @Override
        public boolean wanted() {
            // A stray's pidfd stays readable: polled no more, looked at on each scan instead.
            return !done;
        }

        @Override
        public void ready(PollLoop.Registration self, short revents) {
            if (reap(this)) {
                self.close();
            } else {
                strays.add(this);
            }
            // Its exit may have orphaned others (an exec's children when the exec dies).
            if (adopting) {
                reapOrphans();
            }
        }

        // The runtime stopped while the process ran on: whoever waits learns that nobody watches any more, rather
        // than waiting forever, and a runtime that reattaches reports its exit.
        @Override
        public void closed() {
            if (!done) {
                done = true;
                forget(this);
                emit(() -> exit.tryEmitError(new UnavailableException("the runtime stopped while pid " + pid
                        + " still ran; reattach to learn its exit")));
            }
        }
    }
}
