package org.shimmer.runtime.linux.resources;

import java.time.Duration;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
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
 * accepted, no thread is left.
 */
final class IoScheduler {

    private static final AtomicLong INSTANCES = new AtomicLong();

    private final String decoratorKey;
    private final Queue<ScheduledExecutorService> executors = new ConcurrentLinkedQueue<>();
    private final Scheduler scheduler;
    private volatile boolean closing;

    IoScheduler(String name, int threads, int queued, int ttlSeconds) {
        this.decoratorKey = IoScheduler.class.getName() + "-" + INSTANCES.incrementAndGet();
        Scheduler[] self = new Scheduler[1];
        Schedulers.addExecutorServiceDecorator(decoratorKey, (owner, executor) -> {
            if (owner == self[0]) {
                executors.removeIf(ExecutorService::isTerminated);
                executors.add(executor);
                if (closing) {
                    // Made while closing: refuses its first task, as the scheduler is no longer taking work.
                    stopTaking(executor);
                }
            }
            return executor;
        });
        // Executors are made on first use, after this assignment; the decorator sees every one of them.
        self[0] = Schedulers.newBoundedElastic(threads, queued, name, ttlSeconds, true);
        this.scheduler = self[0];
    }

    Scheduler scheduler() {
        return scheduler;
    }

    /**
     * Lets running tasks finish (at most {@code timeout}), refusing new ones, then disposes the scheduler, which
     * interrupts whatever still runs. Returns whether everything ended within {@code timeout}.
     */
    boolean close(Duration timeout) {
        closing = true;
        executors.forEach(IoScheduler::stopTaking);
        long deadline = System.nanoTime() + timeout.toNanos();
        boolean ended = true;
        try {
            for (ScheduledExecutorService executor : executors) {
                ended &= executor.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            ended = false;
        }
        // The global decorator map must not keep this object (and the plugin's class loader) alive.
        Schedulers.removeExecutorServiceDecorator(decoratorKey);
        scheduler.dispose();
        executors.clear();
        return ended;
    }

    /** Refuses new tasks and drops timers not yet due (a delay, a timeout), as dispose would; running ones go on. */
    private static void stopTaking(ScheduledExecutorService executor) {
        if (executor instanceof ScheduledThreadPoolExecutor pool) {
            pool.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
        }
        executor.shutdown();
    }
}
