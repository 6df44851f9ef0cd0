package org.shimmer.runtime.linux.resources;

import io.netty.channel.EventLoopGroup;
import io.netty.util.concurrent.EventExecutor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import reactor.core.publisher.Mono;
import reactor.netty.resources.LoopResources;

/**
 * The runtime's event loops (reactor-netty's own {@link LoopResources}, named by the runtime), whose {@link #close}
 * returns once their threads have ended. Netty completes a group's termination from inside each loop's thread,
 * before that thread is gone: a host that looked for the plugin's threads right after a stop could still find one.
 */
final class EventLoops implements LoopResources {

    private final LoopResources loops;
    private final Set<EventLoopGroup> handedOut = ConcurrentHashMap.newKeySet();
    private final Object handOut = new Object();
    private boolean closing; // guarded by handOut

    EventLoops(String prefix, int workers) {
        // Never reactor-netty's global loops: those would outlive a plugin unload.
        this.loops = LoopResources.create(prefix, 1, workers, true, false);
    }

    @Override
    public EventLoopGroup onServer(boolean useNative) {
        return remember(loops.onServer(useNative));
    }

    @Override
    public EventLoopGroup onClient(boolean useNative) {
        return remember(loops.onClient(useNative));
    }

    @Override
    public EventLoopGroup onServerSelect(boolean useNative) {
        return remember(loops.onServerSelect(useNative));
    }

    @Override
    public boolean daemon() {
        return loops.daemon();
    }

    @Override
    public boolean isDisposed() {
        return loops.isDisposed();
    }

    /** Stops the loops at once, as {@link LoopResources#disposeLater} does; threads may still be ending. */
    @Override
    public Mono<Void> disposeLater(Duration quietPeriod, Duration timeout) {
        return loops.disposeLater(quietPeriod, timeout);
    }

    /**
     * Stops the loops with no quiet period and waits until each of their threads has ended; returns whether they
     * all did. Each step (learning the threads, stopping the loops, waiting for the threads) waits at most
     * {@code timeout}. Run on a loop's own thread, it waits for every other loop's thread; that one ends once the
     * task that called it returns.
     */
    boolean close(Duration timeout) {
        synchronized (handOut) {
            closing = true;
        }
        List<Thread> threads = threads(timeout);
        if (onOwnLoop()) {
            // A loop's thread may not block (Reactor refuses it), and its own loop cannot end while this task runs:
            // every loop is told to stop, and the other loops' threads are waited for below.
            loops.disposeLater(Duration.ZERO, timeout).subscribe();
        } else {
            try {
                loops.disposeLater(Duration.ZERO, timeout).block(timeout);
            } catch (RuntimeException notInTime) {
                return false;
            }
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        boolean ended = true;
        try {
            for (Thread thread : threads) {
                ended &= thread.join(Duration.ofNanos(remaining(deadline)));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
        return ended;
    }

    /**
     * The threads of the loops handed out. A loop's thread is only known from inside it: each loop is asked for it
     * (one that never ran starts now, to stop at once). One that does not answer in time is left out.
     */
    private List<Thread> threads(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        List<Thread> threads = new ArrayList<>();
        for (EventLoopGroup group : handedOut) {
            for (EventExecutor loop : group) {
                if (loop.inEventLoop()) {
                    continue; // closed from one of its own loops: that thread cannot wait for itself
                }
                try {
                    threads.add(loop.submit(Thread::currentThread).get(remaining(deadline), TimeUnit.NANOSECONDS));
                } catch (RejectedExecutionException | ExecutionException | TimeoutException stopped) {
                    // Stopped already, or busy past the deadline: its group's own termination is all we wait for.
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return threads;
                }
            }
        }
        return threads;
    }

    /** Whether this is the thread of one of the loops handed out (a close run from a connection's callback). */
    private boolean onOwnLoop() {
        for (EventLoopGroup group : handedOut) {
            for (EventExecutor loop : group) {
                if (loop.inEventLoop()) {
                    return true;
                }
            }
        }
        return false;
    }

    /**
     * {@code group}, once known to {@link #close}. Once close began it is refused: close has learned the threads it
     * waits for, and a loop started now (a first bind racing a plugin stop) outlived the stop, found by a reload
     * test as a {@code ttrpc-select} thread still alive.
     */
    private EventLoopGroup remember(EventLoopGroup group) {
        synchronized (handOut) {
            if (!closing) {
                handedOut.add(group);
                return group;
            }
        }
        if (!handedOut.contains(group)) {
            // A group made for this call (reactor-netty makes a new one once its own are disposed); one close knows
            // is stopped, and waited for, by close.
            group.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS);
        }
        throw new RejectedExecutionException(IoScheduler.STOPPED);
    }

    private static long remaining(long deadline) {
        return Math.max(0, deadline - System.nanoTime());
    }
}
