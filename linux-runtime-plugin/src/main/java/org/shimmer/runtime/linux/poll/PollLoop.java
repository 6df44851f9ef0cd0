package org.shimmer.runtime.linux.poll;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.shimmer.runtime.linux.sys.Bell;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The runtime's one poll thread: a {@code poll(2)} loop over every descriptor registered with it (FIFO read ends,
 * pidfds, the child-signal bell), calling each one's {@link Handler} on this thread when it is ready.
 *
 * <p>Invariants: a registered descriptor is owned by its registration and closed exactly once, by this thread,
 * when the registration is {@linkplain Registration#close() closed} or the loop stops (so the number it polls can
 * never be closed under it and reused); {@link Handler#closed()} then runs exactly once, also on this thread.
 * Registering and deregistering work from any thread: they queue the change and ring the loop's {@link Bell}. A
 * descriptor is polled only while its handler {@linkplain Handler#wanted() wants} it; whoever changes that answer
 * calls {@link #wake()}. Nothing is accepted once the thread has stopped: the descriptor would stay open and its
 * handler would never hear of it. Before this loop, the FIFO reader and the exit monitor each had a thread that
 * woke once a second, even with nothing to do (issue 10).
 */
public final class PollLoop implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(PollLoop.class);

    /** What a registration does; every method runs on the poll thread and must not block. */
    public interface Handler {
        /** Whether to poll the descriptor now; asked before every {@code poll(2)}. */
        default boolean wanted() {
            return true;
        }

        /** The events to poll for while wanted; {@link LinuxCalls#POLLIN} unless the handler also writes. */
        default short events() {
            return LinuxCalls.POLLIN;
        }

        /** The descriptor has events ({@code revents}: ready as asked, hung up, or in error). */
        void ready(Registration registration, short revents);

        /** The descriptor is closed: deregistered, or the loop stopped. */
        default void closed() {}
    }

    private final Queue<Registration> added = new ConcurrentLinkedQueue<>();
    private final List<Registration> live = new ArrayList<>();
    private final AtomicInteger registrations = new AtomicInteger();
    private final AtomicBoolean closing = new AtomicBoolean();
    /** What runs once the loop stopped, for owners whose descriptor is not registered yet. */
    private final Set<Runnable> stopActions = ConcurrentHashMap.newKeySet();
    private final Object lifecycle = new Object();
    private boolean stopped;
    private final Bell bell;
    private final Thread thread;

    /** Starts the poll thread, named {@code threadName}. */
    public PollLoop(String threadName) throws IOException {
        this.bell = new Bell();
        this.thread = Thread.ofPlatform().name(threadName).daemon(true).start(this::loop);
    }

    /** One registered descriptor. */
    public final class Registration implements AutoCloseable {
        private final OwnedFd fd;
        private final Handler handler;
        private volatile boolean closeRequested;
        private boolean retired;

        private Registration(OwnedFd fd, Handler handler) {
            this.fd = fd;
            this.handler = handler;
        }

        /**
         * Deregisters and closes the descriptor: at once on the poll thread, otherwise on its next turn.
         * Idempotent.
         */
        @Override
        public void close() {
            closeRequested = true;
            if (Thread.currentThread() == thread) {
                retire(this);
            } else {
                bell.wake();
            }
        }
    }

    /**
     * Registers {@code fd}, which the loop now owns, for its handler's {@link Handler#events()}; closes it and
     * throws when the loop has stopped.
     */
    public Registration register(OwnedFd fd, Handler handler) throws IOException {
        Registration registration = new Registration(fd, handler);
        synchronized (lifecycle) {
            if (stopped || closing.get()) {
                fd.close();
                // A refusal (the runtime stopped), as its closed schedulers refuse: an exec whose FIFOs were
                // registered as the stop closed the loop failed as an internal error, not as unavailable.
                throw new IOException("the poll loop is closed; " + fd + " cannot be watched",
                        new RejectedExecutionException("the poll loop is closed"));
            }
            registrations.incrementAndGet();
            added.add(registration);
        }
        bell.wake();
        return registration;
    }

    /**
     * Runs {@code action} once the loop stopped, after every registration was closed: on the poll thread, or at
     * once on this one when it has stopped already. For an owner whose descriptor is not registered yet (a
     * terminal whose master has not arrived), whose reader would otherwise never learn of the stop; it
     * {@linkplain #forget forgets} the action once the descriptor is registered or no longer coming.
     */
    public void onStop(Runnable action) {
        synchronized (lifecycle) {
            if (!stopped) {
                stopActions.add(action);
                return;
            }
        }
        action.run();
    }

    /** Drops an action given to {@link #onStop}. */
    public void forget(Runnable action) {
        stopActions.remove(action);
    }

    /** Makes the loop ask every handler again whether it wants its descriptor polled. Never blocks. */
    public void wake() {
        bell.wake();
    }

    /** Registrations not yet closed, those still queued included: what a lifecycle left behind. */
    public int registrations() {
        return registrations.get();
    }

    /** Whether {@link #close()} began: a handler told it is closed now learns that the loop stopped. */
    public boolean isClosing() {
        return closing.get();
    }

    /** Whether the poll thread still runs. */
    public boolean isAlive() {
        return thread.isAlive();
    }

    /** Closes every registered descriptor (their handlers hear {@link Handler#closed()}) and stops the thread. */
    @Override
    public void close() {
        if (closing.compareAndSet(false, true)) {
            bell.wake();
            if (Thread.currentThread() != thread) {
                try {
                    thread.join(5_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    private void loop() {
        try (Arena arena = Arena.ofConfined()) {
            Turn turn = new Turn(arena);
            while (!closing.get()) {
                turn.run();
            }
        } catch (IOException | RuntimeException e) {
            log.error("the poll loop failed; every descriptor it watched is closed", e);
        } finally {
            synchronized (lifecycle) {
                stopped = true;
            }
            admitAdded();
            for (Registration registration : List.copyOf(live)) {
                retire(registration);
            }
            // Those given before the stop; one given after it ran at once.
            for (Runnable action : List.copyOf(stopActions)) {
                if (stopActions.remove(action)) {
                    try {
                        action.run();
                    } catch (RuntimeException e) {
                        log.error("an action at the poll loop's stop failed", e);
                    }
                }
            }
            bell.close();
        }
    }

    /**
     * One turn of the loop, and the buffers every turn reuses. A method of its own because HotSpot compiles a
     * method once it has been called a few hundred times, but a running loop's own frame only after tens of
     * thousands of turns (on-stack replacement): with the body inline, the poll thread still ran in the
     * interpreter after 900 container lifecycles ({@code perf}).
     */
    private final class Turn {
        private final Arena arena;
        private final MemorySegment state;
        private final MemorySegment bellBuffer;
        private final List<Registration> polled = new ArrayList<>();
        private MemorySegment fds;
        private int capacity = 1;

        Turn(Arena arena) {
            this.arena = arena;
            this.state = LinuxCalls.allocateCallState(arena);
            this.bellBuffer = arena.allocate(ValueLayout.JAVA_LONG);
            this.fds = arena.allocate(LinuxCalls.POLLFD, capacity);
        }

        void run() throws IOException {
            admitAdded();
            polled.clear();
            for (Registration registration : List.copyOf(live)) {
                if (registration.closeRequested) {
                    retire(registration);
                } else if (wanted(registration)) {
                    polled.add(registration);
                }
            }
            if (polled.size() + 1 > capacity) {
                capacity = Math.max(polled.size() + 1, capacity * 2);
                fds = arena.allocate(LinuxCalls.POLLFD, capacity);
            }
            LinuxCalls.setPollFd(fds, 0, bell.pollNumber(), LinuxCalls.POLLIN);
            for (int i = 0; i < polled.size(); i++) {
                LinuxCalls.setPollFd(fds, i + 1, pollNumber(polled.get(i)), polled.get(i).handler.events());
            }
            // No timeout: every change of interest rings the bell, so an idle runtime costs no wake-up.
            int ready = LinuxCalls.poll(fds, polled.size() + 1, -1, state);
            if (ready <= 0) {
                return;
            }
            if (LinuxCalls.pollRevents(fds, 0) != 0) {
                bell.silence(bellBuffer, state);
            }
            for (int i = 0; i < polled.size(); i++) {
                short revents = LinuxCalls.pollRevents(fds, i + 1);
                Registration registration = polled.get(i);
                if (revents != 0 && !registration.retired) {
                    dispatch(registration, revents);
                }
            }
        }
    }

    /** Moves queued registrations into the live set; one closed on this thread before it got there is gone. */
    private void admitAdded() {
        for (Registration registration; (registration = added.poll()) != null; ) {
            if (!registration.retired) {
                live.add(registration);
            }
        }
    }

    /** The number to poll; -1 (which {@code poll(2)} skips) for a descriptor its owner closed behind our back. */
    private int pollNumber(Registration registration) {
        try {
            return registration.fd.pollNumber();
        } catch (OwnedFd.ClosedException e) {
            log.error("{} was closed while registered; it is deregistered", registration.fd);
            retire(registration);
            return -1;
        }
    }

    private boolean wanted(Registration registration) {
        try {
            return registration.handler.wanted();
        } catch (RuntimeException e) {
            log.error("handler of {} failed; it is deregistered", registration.fd, e);
            retire(registration);
            return false;
        }
    }

    private void dispatch(Registration registration, short revents) {
        try {
            registration.handler.ready(registration, revents);
        } catch (RuntimeException e) {
            log.error("handler of {} failed; it is deregistered", registration.fd, e);
            retire(registration);
        }
    }

    /** Closes the descriptor and tells the handler; poll thread only, once per registration. */
    private void retire(Registration registration) {
        if (registration.retired) {
            return;
        }
        registration.retired = true;
        live.remove(registration);
        registration.fd.close();
        registrations.decrementAndGet();
        try {
            registration.handler.closed();
        } catch (RuntimeException e) {
            log.error("handler of {} failed while closing", registration.fd, e);
        }
    }
}
