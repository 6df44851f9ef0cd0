package org.shimmer.containerd.task;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.shimmer.runtime.linux.poll.PollLoop;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.scheduler.Scheduler;

/**
 * Watches a container's memory cgroup (v1) for OOM kills, as containerd's runc shim does, so that containerd gets
 * {@code /tasks/oom} (CRI's OOMKilled): an eventfd registered on {@code memory.oom_control} through
 * {@code cgroup.event_control}, read on the poll thread. The kernel signals it for an OOM and when the cgroup is
 * removed; only a rise of the cgroup's {@code oom_kill} count is reported, read at the signal and, as the kill is
 * counted after the signal, again a little later and just before the init's exit is published
 * ({@link OomBeforeExit}). None on a unified (v2) host.
 */
final class OomWatch implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(OomWatch.class);
    private static final Path MEMORY = Path.of("/sys/fs/cgroup/memory");
    private static final Duration[] RECHECKS = {Duration.ofMillis(5), Duration.ofMillis(50), Duration.ofMillis(500)};

    private final Path cgroup;
    private final Runnable onOom;
    private final MemorySegment counter;
    private final MemorySegment state;
    private volatile PollLoop.Registration registration;
    private final Scheduler later;
    private final AtomicBoolean rechecking = new AtomicBoolean();
    /** Closed with its task: a recheck still pending reports nothing after the task's end. */
    private volatile boolean closed;
    private long kills;

    private OomWatch(Path cgroup, Runnable onOom, Scheduler later) throws IOException {
        this.cgroup = cgroup;
        this.onOom = onOom;
        this.later = later;
        Arena arena = Arena.ofAuto();
        this.counter = arena.allocate(8);
        this.state = LinuxCalls.allocateCallState(arena);
        this.kills = oomKills();
    }

    /** Watches the memory cgroup of process {@code pid}, if it has a v1 one. Blocking. */
    static Optional<OomWatch> start(PollLoop loop, Scheduler later, int pid, Runnable onOom) throws IOException {
        Optional<Path> cgroup = memoryCgroup(pid);
        if (cgroup.isEmpty()) {
            return Optional.empty();
        }
        OomWatch watch = new OomWatch(cgroup.get(), onOom, later);
        OwnedFd events = OwnedFd.eventfd();
        try (OwnedFd control = OwnedFd.open(cgroup.get().resolve("memory.oom_control"),
                LinuxCalls.O_RDONLY | LinuxCalls.O_CLOEXEC)) {
            int eventFd = events.use(fd -> fd);
            int controlFd = control.use(fd -> fd);
            // The kernel takes its own reference to both files: the control file may be closed afterwards.
            Files.writeString(cgroup.get().resolve("cgroup.event_control"), eventFd + " " + controlFd,
                    StandardCharsets.US_ASCII);
        } catch (IOException | RuntimeException e) {
            events.close();
            throw e;
        }
        watch.registration = loop.register(events, watch.new Reader(events));
        return Optional.of(watch);
    }

    private static Optional<Path> memoryCgroup(int pid) throws IOException {
        if (!Files.isDirectory(MEMORY)) {
            return Optional.empty();
        }
        for (String line : Files.readAllLines(Path.of("/proc", Integer.toString(pid), "cgroup"))) {
            String[] fields = line.split(":", 3);
            if (fields.length == 3 && ("," + fields[1] + ",").contains(",memory,")) {
                return Optional.of(MEMORY.resolve(fields[2].replaceFirst("^/", "")));
            }
        }
        return Optional.empty();
    }

    /** Reports an OOM kill if the count rose since the last report; whether it did. */
    private synchronized boolean report() {
        if (closed) {
            return false;
        }
        long now = oomKills();
        if (now <= kills) {
            return false;
        }
        kills = now;
        onOom.run();
        return true;
    }

    /** Reports an OOM kill the cgroup counted and nobody reported yet: for the init's exit, which follows it. */
    void reportUnreported() {
        report();
    }

    /**
     * Reads the count again a little later ({@link #RECHECKS}), once at a time: the kernel signals an OOM before its
     * killer has counted the kill, and a count read at once had not risen yet (the event was lost: a CI flake).
     */
    private void recheck(int attempt) {
        if (attempt == 0 && !rechecking.compareAndSet(false, true)) {
            return;
        }
        if (attempt >= RECHECKS.length) {
            rechecking.set(false);
            return;
        }
        later.schedule(() -> {
            if (report() || closed || !Files.isDirectory(cgroup)) {
                rechecking.set(false);
            } else {
                recheck(attempt + 1);
            }
        }, RECHECKS[attempt].toMillis(), TimeUnit.MILLISECONDS);
    }

    /** The cgroup's {@code oom_kill} count; what it was when the cgroup is gone. */
    private long oomKills() {
        try {
            for (String line : Files.readAllLines(cgroup.resolve("memory.oom_control"))) {
                if (line.startsWith("oom_kill ")) {
                    return Long.parseLong(line.substring("oom_kill ".length()).trim());
                }
            }
        } catch (NoSuchFileException gone) {
            return kills;
        } catch (IOException | NumberFormatException unreadable) {
            log.debug("cannot read the OOM kills of {}: {}", cgroup, unreadable.toString());
        }
        return kills;
    }

    @Override
    public void close() {
        // Under report's lock: once closed, no report is under way or to come (none after the task's delete).
        synchronized (this) {
            closed = true;
        }
        PollLoop.Registration current = registration;
        if (current != null) {
            current.close();
        }
    }

    /** On the poll thread: drains the eventfd and reports a new OOM kill. */
    private final class Reader implements PollLoop.Handler {
        private final OwnedFd events;

        Reader(OwnedFd events) {
            this.events = events;
        }

        @Override
        public void ready(PollLoop.Registration self, short revents) {
            try {
                events.read(counter, state);
            } catch (IOException e) {
                self.close();
                return;
            }
            if (!report() && Files.isDirectory(cgroup)) {
                recheck(0);
            }
            if (!Files.isDirectory(cgroup)) {
                self.close();
            }
        }
    }
}
