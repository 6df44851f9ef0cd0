package org.shimmer.runtime.linux.resources;

import java.time.Duration;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;
import reactor.core.Disposable;
import reactor.core.Exceptions;
import reactor.core.Scannable;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;

/**
 * The runtime's bounded scheduler for blocking work, and its graceful end.
 *
 * <p>Reactor's {@code disposeGracefully()} waits for the executors on a static pool of reactor-core whose thread
 * is not a daemon and idles 10 s before it ends: a host JVM whose {@code main} returned after stopping the plugin
 * lingered that long. So the executors of this scheduler are collected as Reactor makes them (through an executor
 * decorator that only looks at this scheduler and is removed on close), and {@link #close} shuts them down and
 * waits for them on the calling thread: running tasks finish, timers not yet due are dropped, nothing new is
 * accepted, no thread is left. An executor counts as terminated while its last thread is still on its way out, so
 * the threads themselves are collected as the executors make them, and waited for too.
 *
 * <p>Callers reach Reactor's scheduler only through a gate that close shuts before it disposes it: once Reactor's
 * scheduler has made all its threads, a caller that read its state just before {@code dispose()} marked it shut
 * down loops for good picking a busy thread, as every one is then marked evicted (a host thread calling into the
 * plugin as it stopped spun at 100% of a core). Behind the gate every call is refused once close began.
 */
final class IoScheduler {

    /**
     * The message of the rejection a call meets once close began: what the caller is told (as an
     * {@code UnavailableException}), where Reactor's own "Scheduler unavailable" said nothing of why.
     */
    static final String STOPPED = "the runtime stopped; it takes no new work";

    private static final AtomicLong INSTANCES = new AtomicLong();

    private final String decoratorKey;
    private final Queue<ScheduledExecutorService> executors = new ConcurrentLinkedQueue<>();
    /** Every thread the executors made, with the executor that made it. */
    private final Map<Thread, ScheduledExecutorService> threads = new ConcurrentHashMap<>();
    private final Scheduler reactorScheduler;
    private final Scheduler scheduler = new Gate();
    /** Callers inside Reactor's scheduler right now; close waits for none before it disposes it. */
    private final AtomicInteger inside = new AtomicInteger();
    private volatile boolean closing;

    IoScheduler(String name, int threads, int queued, int ttlSeconds) {
        this.decoratorKey = IoScheduler.class.getName() + "-" + INSTANCES.incrementAndGet();
        Scheduler[] self = new Scheduler[1];
        Schedulers.addExecutorServiceDecorator(decoratorKey, (owner, executor) -> {
            if (owner == self[0]) {
                executors.removeIf(ExecutorService::isTerminated);
                executors.add(executor);
                if (executor instanceof ThreadPoolExecutor pool) {
                    ThreadFactory factory = pool.getThreadFactory();
                    pool.setThreadFactory(task -> remember(factory.newThread(task), executor));
                }
                if (closing) {
                    // Made while closing: refuses its first task, as the scheduler is no longer taking work.
                    stopTaking(executor);
                }
            }
            return executor;
        });
        // Executors are made on first use, after this assignment; the decorator sees every one of them.
        self[0] = Schedulers.newBoundedElastic(threads, queued, name, ttlSeconds, true);
        this.reactorScheduler = self[0];
    }

    Scheduler scheduler() {
        return scheduler;
    }

    /**
     * Lets running tasks finish (at most {@code timeout}), refusing new ones, then disposes the scheduler, which
     * interrupts whatever still runs. Returns whether everything ended within {@code timeout}. Run on one of this
     * scheduler's threads (a host stopping the plugin from a callback of its work), it waits for every thread but
     * that one, which ends once the task that called it returns.
     */
    boolean close(Duration timeout) {
        return close(timeout, () -> { });
    }

    /**
     * {@link #close(Duration)}, running {@code stopped} once the scheduler takes no new task and before it waits
     * for the running ones: what that runs may end a task that would otherwise hold the close, and whatever the
     * task's end asks of this scheduler (an undo) is refused, as it would be once the close waited it out.
     */
    boolean close(Duration timeout, Runnable stopped) {
        boolean callerInterrupted = Thread.currentThread().isInterrupted();
        closing = true;
        executors.forEach(IoScheduler::stopTaking);
        stopped.run();
        // That executor's termination waits for the task running this close: it would wait out the whole timeout.
        ScheduledExecutorService own = threads.get(Thread.currentThread());
        long deadline = System.nanoTime() + timeout.toNanos();
        boolean ended = true;
        try {
            for (ScheduledExecutorService executor : executors) {
                if (executor != own) {
                    ended &= executor.awaitTermination(Math.max(0, deadline - System.nanoTime()),
                            TimeUnit.NANOSECONDS);
                }
            }
            for (Thread thread : threads.keySet()) {
                // One still new was made for a task its executor then refused: it never runs. A close run on one
                // of these threads cannot wait for itself.
                if (thread.getState() != Thread.State.NEW && thread != Thread.currentThread()) {
                    ended &= thread.join(Duration.ofNanos(Math.max(0, deadline - System.nanoTime())));
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            callerInterrupted = true; // during the close, by whoever called it: theirs to keep
            ended = false;
        }
        // The global decorator map must not keep this object (and the plugin's class loader) alive.
        Schedulers.removeExecutorServiceDecorator(decoratorKey);
        // Callers that passed the gate before it shut are refused by the stopped executors within microseconds.
        while (inside.get() > 0) {
            LockSupport.parkNanos(10_000);
        }
        reactorScheduler.dispose();
        if (own != null && !callerInterrupted) {
            // The dispose interrupted the executor this close runs on: the host's callback that stopped the plugin
            // went on with an interrupt it never asked for, and its next blocking call failed.
            Thread.interrupted();
        }
        executors.clear();
        threads.clear();
        return ended;
    }

    /** Keeps a thread an executor of this scheduler made, and forgets those that ended (idle ones are evicted). */
    private Thread remember(Thread thread, ScheduledExecutorService executor) {
        threads.keySet().removeIf(made -> made.getState() == Thread.State.TERMINATED);
        if (thread != null) {
            threads.put(thread, executor);
        }
        return thread;
    }

    /** Refuses new tasks and drops timers not yet due (a delay, a timeout), as dispose would; running ones go on. */
    private static void stopTaking(ScheduledExecutorService executor) {
        if (executor instanceof ScheduledThreadPoolExecutor pool) {
            pool.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
        }
        executor.shutdown();
    }

    /** Reactor's scheduler behind a gate: a call enters unless close began, and close waits for those inside. */
    private final class Gate implements Scheduler, Scannable {

        private <T> T enter(Supplier<T> call) {
            inside.incrementAndGet();
            try {
                if (closing) {
                    throw Exceptions.failWithRejected(STOPPED);
                }
                return call.get();
            } finally {
                inside.decrementAndGet();
            }
        }

        @Override
        public Disposable schedule(Runnable task) {
            return enter(() -> reactorScheduler.schedule(task));
        }

        @Override
        public Disposable schedule(Runnable task, long delay, TimeUnit unit) {
            return enter(() -> reactorScheduler.schedule(task, delay, unit));
        }

        @Override
        public Disposable schedulePeriodically(Runnable task, long initialDelay, long period, TimeUnit unit) {
            return enter(() -> reactorScheduler.schedulePeriodically(task, initialDelay, period, unit));
        }

        @Override
        public Worker createWorker() {
            return enter(reactorScheduler::createWorker);
        }

        @Override
        public long now(TimeUnit unit) {
            return reactorScheduler.now(unit);
        }

        @Override
        public boolean isDisposed() {
            return reactorScheduler.isDisposed();
        }

        /** The owner ends this scheduler ({@link IoScheduler#close}); a user of it cannot. */
        @Override
        public void dispose() {
        }

        /** Reactor's own answers ({@code CAPACITY}: the most threads), as if ungated. */
        @Override
        @SuppressWarnings("rawtypes") // Scannable declares it raw
        public Object scanUnsafe(Attr key) {
            return Scannable.from(reactorScheduler).scanUnsafe(key);
        }

        @Override
        public String toString() {
            return reactorScheduler.toString();
        }
    }
}
