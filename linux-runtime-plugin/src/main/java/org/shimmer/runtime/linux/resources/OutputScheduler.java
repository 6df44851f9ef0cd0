package org.shimmer.runtime.linux.resources;

import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;

/**
 * The runtime's scheduler for calling the host's output subscribers, apart from the io scheduler: a subscriber that
 * blocks in {@code onNext} holds one of these threads, never a thread the runtime's own work (exec, stats, kill,
 * release) needs.
 *
 * <p>At most {@code threads} deliveries run at once; threads are made as deliveries come, up to that bound, and
 * each ends after {@code ttlSeconds} without work. A delivery that finds them all busy waits in one queue shared
 * by every thread and goes to the first one that frees: Reactor's bounded elastic scheduler queues it on one
 * chosen thread instead, where it waits behind that thread's subscriber even if the subscriber blocks for good and
 * other threads idle. The queue holds at most one delivery per stream (each stream's drain is serial), so it needs
 * no bound of its own.
 *
 * <p>{@link #close} refuses new deliveries at once, lets running ones end, interrupts those still running at the
 * timeout, and waits for the threads themselves.
 */
final class OutputScheduler {

    /** How long close waits for threads it interrupted at the timeout (a subscriber blocked on a latch). */
    private static final Duration INTERRUPT_GRACE = Duration.ofSeconds(1);

    private final ThreadPoolExecutor executor;
    private final Scheduler scheduler;
    private final Set<Thread> threads = ConcurrentHashMap.newKeySet();

    OutputScheduler(String name, int threads, int ttlSeconds) {
        AtomicInteger made = new AtomicInteger();
        this.executor = new ThreadPoolExecutor(threads, threads, ttlSeconds, TimeUnit.SECONDS,
                new LinkedBlockingQueue<>(), task -> {
                    Thread thread = new Thread(task, name + "-" + made.incrementAndGet());
                    thread.setDaemon(true);
                    this.threads.removeIf(old -> old.getState() == Thread.State.TERMINATED);
                    this.threads.add(thread);
                    return thread;
                }, (task, pool) -> {
                    throw new RejectedExecutionException(IoScheduler.STOPPED);
                });
        // No thread stays for a runtime whose output nobody reads.
        executor.allowCoreThreadTimeOut(true);
        // Reactor's own wrapper: the host's schedule hooks (context propagation, MDC) apply to deliveries too.
        this.scheduler = Schedulers.fromExecutorService(executor, name);
        this.scheduler.init();
    }

    Scheduler scheduler() {
        return scheduler;
    }

    /**
     * Refuses new deliveries, lets running ones end (at most {@code timeout}), then interrupts what still runs and
     * waits a little more for it. Returns whether every thread ended within {@code timeout}, uninterrupted. Run on
     * one of these threads (a host stopping the plugin from its output subscriber), it waits for every other one,
     * and leaves its own interrupt status as it was.
     */
    boolean close(Duration timeout) {
        boolean callerInterrupted = Thread.currentThread().isInterrupted();
        executor.shutdown();
        boolean ended = join(timeout);
        if (!ended) {
            executor.shutdownNow();
            join(INTERRUPT_GRACE);
        }
        if (threads.contains(Thread.currentThread()) && !callerInterrupted) {
            Thread.interrupted();
        }
        return ended;
    }

    /** Waits for every thread made but the calling one; false if one is still alive at the deadline. */
    private boolean join(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        try {
            while (true) {
                // Looked for again after each join: a thread that ended with deliveries still queued made another.
                // One still new was made for a task the pool then refused: it never runs.
                Thread alive = threads.stream()
                        .filter(thread -> thread != Thread.currentThread() && thread.getState() != Thread.State.NEW
                                && thread.isAlive())
                        .findFirst().orElse(null);
                long left = deadline - System.nanoTime();
                if (alive == null || left <= 0) {
                    return alive == null;
                }
                alive.join(Duration.ofNanos(left));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
