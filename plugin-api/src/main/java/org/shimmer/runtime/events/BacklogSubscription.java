package org.shimmer.runtime.events;

import java.util.ArrayDeque;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;
import org.reactivestreams.Subscription;
import reactor.core.CoreSubscriber;
import reactor.core.Exceptions;
import reactor.core.publisher.Operators;
import reactor.core.scheduler.Scheduler;

/**
 * One subscription of an {@link InMemoryEventExchange}: its bounded backlog and the task that drains it into the
 * subscriber on the delivery scheduler.
 *
 * <p>Invariants: everything below is guarded by this object's monitor, and the subscriber is only ever called
 * outside it, so a subscriber that blocks holds up no publisher; at most one drain is scheduled or running at a
 * time, so the subscriber's signals are serialized and envelopes reach it in the order they were offered; the
 * backlog never holds more than its capacity plus one (the envelope in hand-off, as the Reactor chain this replaced
 * held one in {@code publishOn}; the counts the README and the tests give rely on it). A drain takes one envelope
 * at a time, so one in the subscriber's hands is never also counted as room. Each drain is a task of its own on
 * the delivery scheduler: a subscriber blocked in one keeps that thread only, and a bounded elastic scheduler sends
 * the next drain of another subscriber to its least busy thread (the {@code publishOn} chain this replaced pinned
 * each subscription to one worker, shared with others once subscriptions outnumbered threads). That chain, four
 * operators per subscription, each with its own queue and a request(1) hand-off per envelope, cost about 3 µs and
 * 1.5 KiB per envelope with one subscriber and 30 µs with eight (benchmarks/run-jmh).
 */
final class BacklogSubscription implements Subscription, Runnable {

    /** What {@link #offer} did with an envelope. */
    enum Offer {
        /** Queued for delivery. */
        QUEUED,
        /** Queued, and one envelope was dropped (the oldest or this one) by the overflow policy. */
        DROPPED,
        /** The backlog was full under {@link OverflowPolicy#FAIL}: the subscription now ends with an error. */
        FAILED,
        /** The subscription has ended; nothing was queued. */
        ENDED
    }

    /** How long a drain that emptied the queue waits for more before it ends. */
    private static final long LINGER_NANOS = 50_000;

    final EventFilter filter;
    final Backlog backlog;
    /** Envelopes this subscription lost to its overflow policy. */
    final AtomicLong dropped = new AtomicLong();
    /** When, by the exchange's clock, its next drop may be logged. */
    final AtomicLong warnDue;

    private final CoreSubscriber<? super Envelope> actual;
    private final Scheduler delivery;
    private final Consumer<BacklogSubscription> onEnd;
    private final int limit;
    /** A lingering drain is woken early once the queue holds this many. */
    private final int wakeAt;
    private final ArrayDeque<Envelope> queue = new ArrayDeque<>();
    private long demand;
    private boolean draining;
    /** The thread of a drain waiting for more, or null. */
    private Thread lingering;
    private boolean cancelled;
    /** Set once no envelope will be accepted: complete once the queue is delivered, or fail with the error. */
    private boolean done;
    private Throwable error;

    /**
     * @param onEnd called when the subscription ends (cancelled, failed, completed; maybe more than once):
     *     unregisters it from the exchange
     * @param now the exchange's clock, in milliseconds
     */
    BacklogSubscription(CoreSubscriber<? super Envelope> actual, EventFilter filter, Backlog backlog,
            Scheduler delivery, Consumer<BacklogSubscription> onEnd, long now) {
        this.actual = actual;
        this.warnDue = new AtomicLong(now);
        this.filter = filter;
        this.backlog = backlog;
        this.delivery = delivery;
        this.onEnd = onEnd;
        this.limit = backlog.capacity() + 1;
        this.wakeAt = Math.max(1, limit / 2);
    }

    /** Called by publishers: appends {@code envelope} by the backlog's policy, and starts a drain if none runs. */
    Offer offer(Envelope envelope) {
        Offer result;
        boolean claimed;
        Thread wake;
        synchronized (this) {
            if (done || cancelled) {
                return Offer.ENDED;
            }
            if (queue.size() < limit) {
                queue.addLast(envelope);
                result = Offer.QUEUED;
            } else {
                switch (backlog.overflow()) {
                    case DROP_OLDEST -> {
                        queue.pollFirst();
                        queue.addLast(envelope);
                        result = Offer.DROPPED;
                    }
                    case DROP_NEWEST -> result = Offer.DROPPED;
                    case FAIL -> {
                        done = true;
                        error = new EventOverflowException("subscriber " + filter + " fell more than "
                                + backlog.capacity() + " events behind", Exceptions.failWithOverflow(
                                        "backlog of " + backlog.capacity() + " full"));
                        result = Offer.FAILED;
                    }
                    default -> throw new IllegalStateException("unknown overflow policy " + backlog.overflow());
                }
            }
            claimed = claimDrain();
            wake = done || queue.size() >= wakeAt ? takeLingering() : null;
        }
        LockSupport.unpark(wake);
        if (result == Offer.FAILED) {
            onEnd.accept(this);
        }
        if (claimed) {
            schedule();
        }
        return result;
    }

    /** Ends the subscription normally once what is queued is delivered; the exchange was disposed. */
    void complete() {
        boolean claimed;
        Thread wake;
        synchronized (this) {
            if (done || cancelled) {
                return;
            }
            done = true;
            claimed = claimDrain();
            wake = takeLingering();
        }
        LockSupport.unpark(wake);
        if (claimed) {
            schedule();
        }
    }

    /** Whether the subscriber cancelled, or the subscription ended otherwise. */
    synchronized boolean isEnded() {
        return cancelled || done;
    }

    @Override
    public void request(long n) {
        if (!Operators.validate(n)) {
            return;
        }
        synchronized (this) {
            demand = Operators.addCap(demand, n);
            if (!claimDrain()) {
                return;
            }
        }
        schedule();
    }

    @Override
    public void cancel() {
        Thread wake;
        synchronized (this) {
            if (cancelled) {
                return;
            }
            cancelled = true;
            queue.clear();
            wake = takeLingering();
        }
        LockSupport.unpark(wake);
        onEnd.accept(this);
    }

    /**
     * The drain: delivers while there is demand; then, once the subscription is done, its terminal signal: a
     * completion after everything queued, an overflow error as soon as the subscriber has no demand left for what
     * is queued (an error needs no demand).
     *
     * <p>A drain that empties the queue waits {@link #LINGER_NANOS} for more before it ends. Without that, a
     * subscriber quicker than its publisher ended its drain after every envelope, and the next publish paid a task
     * submission and a thread wake-up (with 8 subscribers on 2 cores, 8 of each per envelope, ~35 µs). Publishers
     * never wake a lingering drain, except when the queue is half full or the subscription ends. The wait holds
     * the delivery thread, once per burst, for about that long.
     */
    @Override
    public void run() {
        boolean lingered = false;
        while (true) {
            Envelope next;
            boolean terminal = false;
            synchronized (this) {
                lingering = null;
                if (cancelled) {
                    draining = false;
                    return;
                }
                next = demand > 0 ? queue.pollFirst() : null;
                if (next != null) {
                    lingered = false;
                    if (demand != Long.MAX_VALUE) {
                        demand--;
                    }
                } else if (done && (error != null || queue.isEmpty())) {
                    // Terminal: draining stays set, so no drain ever runs again.
                    terminal = true;
                    cancelled = true;
                    queue.clear();
                } else if (lingered || done || demand == 0) {
                    draining = false;
                    return;
                } else {
                    lingering = Thread.currentThread();
                }
            }
            if (next != null) {
                try {
                    actual.onNext(next);
                } catch (Throwable thrown) {
                    // Rule 2.13: a subscriber that throws has ended its subscription. Left registered, it held a
                    // full backlog and drop warnings for good; on a scheduler that runs tasks in place, the
                    // publisher failed and the subscribers after it lost the envelope.
                    abandon();
                    dropError(thrown);
                    return;
                }
            } else if (terminal) {
                onEnd.accept(this);
                signalEnd(error);
                return;
            } else {
                lingered = true;
                LockSupport.parkNanos(this, LINGER_NANOS);
            }
        }
    }

    /** Whether the caller must schedule a drain: there is something to do and no drain is pending. */
    private boolean claimDrain() {
        if (draining || cancelled || (queue.isEmpty() || demand == 0) && !done) {
            return false;
        }
        draining = true;
        return true;
    }

    private Thread takeLingering() {
        Thread thread = lingering;
        lingering = null;
        return thread;
    }

    private void schedule() {
        try {
            delivery.schedule(this);
        } catch (RejectedExecutionException e) {
            // The delivery scheduler is gone: this thread holds the drain, so it may signal the subscriber. Once
            // the exchange was disposed (a runtime stops it before its scheduler), nothing else can arrive: the
            // drain runs here, so what is queued still goes out and the subscription completes as documented.
            if (endedNormally()) {
                run();
                return;
            }
            abandon();
            signalEnd(e);
        }
    }

    private synchronized boolean endedNormally() {
        return done && error == null && !cancelled;
    }

    /** Takes the subscription out of the exchange for good; no signal follows. */
    private void abandon() {
        synchronized (this) {
            cancelled = true;
            queue.clear();
        }
        onEnd.accept(this);
    }

    /** The terminal signal; one that throws cannot reach the subscriber, so it goes to Reactor's dropped hook. */
    private void signalEnd(Throwable failure) {
        try {
            if (failure == null) {
                actual.onComplete();
            } else {
                actual.onError(failure);
            }
        } catch (Throwable thrown) {
            dropError(thrown);
        }
    }

    private void dropError(Throwable thrown) {
        Exceptions.throwIfJvmFatal(thrown);
        Operators.onErrorDropped(thrown, actual.currentContext());
    }
}
