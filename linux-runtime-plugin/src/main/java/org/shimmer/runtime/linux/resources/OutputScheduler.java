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
 * <p>{@link #close} refuses new deliveries at once, lets running and queued ones end, interrupts those still running
 * at the timeout, and waits for the threads themselves.
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
     * Refuses new deliveries, lets running and queued ones end (at most {@code timeout}), then interrupts the
     * subscribers still running and waits a little more. Returns whether every thread ended within {@code timeout},
     * uninterrupted. The pool is never stopped with {@code shutdownNow()}: that threw away deliveries still queued
     * behind blocked subscribers (a stream's drain, or the completion of an exchange disposed by the stop), and
     * their subscribers then waited for good, their drain marked as running. A delivery still queued after the grace
     * runs once a subscriber returns. Run on one of these threads (a host stopping the plugin from its output
     * subscriber), it waits for every other one. The caller's interrupt status is kept, and does not cut the wait
     * short.
     */
    boolean close(Duration timeout) {
        boolean callerInterrupted = Thread.interrupted();
        try {
            executor.shutdown();
            if (join(timeout)) {
                return true;
            }
            Thread self = Thread.currentThread();
            threads.stream().filter(thread -> thread != self && thread.isAlive()).forEach(Thread::interrupt);
            join(INTERRUPT_GRACE);
            return false;
        } finally {
            if (callerInterrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * Waits, uninterruptibly, until every thread but the calling one ended; false if one is still alive (or still
     * about to start) at the deadline. The pool's own count comes first: it counts a worker from before its thread
     * starts, where a thread still new looked like one that never would, and the wait ended before it ran. A caller
     * from outside the pool waits for its termination; one of its own threads can never see that (it is a worker
     * itself), so it looks at the count every millisecond instead.
     */
    private boolean join(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        Thread self = Thread.currentThread();
        int own = threads.contains(self) ? 1 : 0;
        boolean interrupted = false;
        try {
            while (executor.getPoolSize() > own) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                try {
                    if (own == 0) {
                        executor.awaitTermination(left, TimeUnit.NANOSECONDS);
                    } else {
                        Thread.sleep(1);
                    }
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            for (Thread thread : threads) {
                while (thread != self && thread.isAlive()) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        return false;
                    }
                    try {
                        thread.join(Duration.ofNanos(left));
                    } catch (InterruptedException e) {
                        interrupted = true;
                    }
                }
            }
            return true;
        } finally {
            if (interrupted) {
                self.interrupt();
            }
        }
    }
}
