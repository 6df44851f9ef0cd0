package org.shimmer.runtime.linux.container;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.reactivestreams.Publisher;
import org.reactivestreams.Subscriber;
import org.reactivestreams.Subscription;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.UnavailableException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.Disposable;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Operators;
import reactor.core.scheduler.Scheduler;

/**
 * One output stream of a container's process, read continuously and held in a buffer of at most {@code bound}
 * bytes until someone reads it.
 *
 * <p>The shim's streams are read only as fast as they are consumed, so a host that ignored one stalled the process
 * once the pipe filled (issue 11). Here the source is always drained at once into the buffer, which never holds
 * more than the bound: when a chunk would exceed it the oldest bytes go first (a reader who comes late, or falls
 * more than the bound behind, sees the most recent output) and are counted in {@link #droppedBytes()}. A
 * subscriber that keeps requesting gets every byte, in order, while it stays within the bound; a chunk that comes
 * while it waits for one is its whole, whatever the bound (one more chunk at most, outside it). One subscriber at a
 * time: a second one while the first is subscribed gets {@link FailedPreconditionException}; a subscriber that
 * cancels, or whose {@code onNext} throws (it then gets that error), leaves the stream running, and the next one
 * gets what was buffered since and what follows. Once the source ended and the buffer is empty, every subscriber
 * gets the end (or the source's error) at once.
 *
 * <p>The source's thread only appends and trims, under the lock: it is the poll loop's, shared by every FIFO and
 * pidfd, so subscriber code running there (a slow {@code onNext}) stalled them all, and one that threw closed the
 * FIFO, leaving the container to SIGPIPE. Subscribers are called from a serial drain on the delivery scheduler
 * only, and never before their {@code onSubscribe} returned (Reactive Streams 1.3). That is the runtime's output
 * scheduler, not its io scheduler: subscribers that blocked there held every io thread, and exec, stats, kill and
 * release of every container waited for them.
 */
final class BoundedOutput {

    private static final Logger log = LoggerFactory.getLogger(BoundedOutput.class);

    private final String name;
    private final int bound;
    private final Scheduler delivery;
    private final ArrayDeque<byte[]> chunks = new ArrayDeque<>();
    private long buffered;
    /**
     * A chunk that came while the subscriber waited for one (it had asked, nothing was buffered): already its, so
     * outside the bound, else a bound under one read (0 above all) dropped every byte before the subscriber that
     * asked for it could take it. At most one: a subscriber that does not take it leaves the rest to the bound.
     */
    private byte[] owed;
    private long dropped;
    private boolean ended;
    private Throwable failure;
    private Reader reader;
    private Disposable source;

    /**
     * @param name what the stream is, for messages: {@code stdout of container ns/id}
     * @param bound the most bytes held, at least 0
     * @param delivery the scheduler subscribers are called from: the runtime's output scheduler, as they may block
     */
    BoundedOutput(String name, int bound, Scheduler delivery) {
        this.name = name;
        this.bound = bound;
        this.delivery = delivery;
    }

    /** Starts draining {@code source}, with unbounded demand. Called once. */
    void connect(Flux<byte[]> source) {
        Disposable subscription = source.subscribe(this::offer, this::fail, this::end);
        synchronized (this) {
            this.source = subscription;
        }
    }

    /** Stops reading the source (its process is gone); what was buffered stays readable, then the stream ends. */
    void disconnect() {
        Disposable subscription;
        synchronized (this) {
            subscription = source;
        }
        if (subscription != null) {
            subscription.dispose();
        }
        end();
    }

    /** The stream as the host sees it. */
    Flux<byte[]> flux() {
        Publisher<byte[]> stream = this::attach;
        return Flux.from(stream);
    }

    /** Bytes dropped so far because nobody read them in time and the buffer was full. */
    synchronized long droppedBytes() {
        return dropped;
    }

    /** Bytes held for nobody now, never more than the bound (a chunk owed to the subscriber is not counted). */
    synchronized long bufferedBytes() {
        return buffered;
    }

    private void attach(Subscriber<? super byte[]> actual) {
        Reader next = new Reader(actual);
        boolean refused;
        synchronized (this) {
            refused = reader != null;
            if (!refused) {
                reader = next;
            }
        }
        if (refused) {
            Operators.error(actual, new FailedPreconditionException(name + " already has a subscriber; "
                    + "subscribe again once that one cancelled or ended"));
            return;
        }
        actual.onSubscribe(next);
        next.subscribed = true;
        // An ended stream ends for a subscriber that has not asked for anything yet too.
        next.schedule();
    }

    private void offer(byte[] chunk) {
        if (chunk.length == 0) {
            return;
        }
        Reader current;
        synchronized (this) {
            current = reader;
            if (current != null && current.requested.get() > 0 && owed == null && chunks.isEmpty()) {
                owed = chunk;
            } else {
                chunks.add(chunk);
                buffered += chunk.length;
                trim();
            }
        }
        if (current != null) {
            current.schedule();
        }
    }

    private void fail(Throwable error) {
        Reader current;
        synchronized (this) {
            if (!ended) {
                failure = error;
                ended = true;
            }
            current = reader;
        }
        if (current != null) {
            current.schedule();
        }
    }

    private void end() {
        Reader current;
        synchronized (this) {
            ended = true;
            current = reader;
        }
        if (current != null) {
            current.schedule();
        }
    }

    /** Drops the oldest bytes beyond the bound; a chunk larger than what may stay keeps its newest bytes. */
    private void trim() {
        while (buffered > bound) {
            byte[] oldest = chunks.poll();
            long excess = buffered - bound;
            if (oldest.length <= excess) {
                buffered -= oldest.length;
                dropped += oldest.length;
            } else {
                chunks.addFirst(Arrays.copyOfRange(oldest, (int) excess, oldest.length));
                buffered -= excess;
                dropped += excess;
            }
        }
    }

    /**
     * The one subscriber's subscription: its demand, its cancel (which frees the stream for the next one), and its
     * drain, run by one delivery thread at a time (others leave it a note to go round again).
     */
    private final class Reader implements Subscription {

        private final Subscriber<? super byte[]> actual;
        private final AtomicLong requested = new AtomicLong();
        private final AtomicInteger wip = new AtomicInteger();
        private volatile boolean subscribed;

        Reader(Subscriber<? super byte[]> actual) {
            this.actual = actual;
        }

        @Override
        public void request(long n) {
            if (Operators.validate(n)) {
                requested.getAndUpdate(left -> Operators.addCap(left, n));
                schedule();
            }
        }

        @Override
        public void cancel() {
            detach();
        }

        /** Whether this reader still holds the stream; frees it if so. */
        private boolean detach() {
            synchronized (BoundedOutput.this) {
                if (reader != this) {
                    return false;
                }
                reader = null;
                // Not taken: the oldest byte held, for the next subscriber within the bound as any other.
                if (owed != null) {
                    chunks.addFirst(owed);
                    buffered += owed.length;
                    owed = null;
                    trim();
                }
                return true;
            }
        }

        void schedule() {
            if (wip.getAndIncrement() != 0) {
                return;
            }
            try {
                delivery.schedule(this::drain);
            } catch (RejectedExecutionException stopped) {
                // The runtime stopped: nothing will read for this subscriber any more.
                wip.set(0);
                if (subscribed && detach()) {
                    actual.onError(new UnavailableException(name + ": the runtime stopped", stopped));
                }
            }
        }

        private void drain() {
            int missed = 1;
            do {
                while (subscribed) {
                    byte[] next = null;
                    Throwable error = null;
                    boolean end = false;
                    synchronized (BoundedOutput.this) {
                        if (reader != this) {
                            break;
                        }
                        if (owed != null || !chunks.isEmpty()) {
                            if (requested.get() == 0) {
                                break;
                            }
                            if (owed != null) {
                                next = owed;
                                owed = null;
                            } else {
                                next = chunks.poll();
                                buffered -= next.length;
                            }
                            // Under the lock: a chunk offered now must not take this demand for its own.
                            requested.getAndUpdate(left -> left == Long.MAX_VALUE ? left : left - 1);
                        } else if (ended) {
                            reader = null;
                            error = failure;
                            end = true;
                        } else {
                            break;
                        }
                    }
                    if (end) {
                        if (error != null) {
                            actual.onError(error);
                        } else {
                            actual.onComplete();
                        }
                        break;
                    }
                    try {
                        actual.onNext(next);
                    } catch (Throwable thrown) {
                        // A subscriber broke the rule (Reactive Streams 2.13): it goes, the stream stays.
                        if (detach()) {
                            try {
                                actual.onError(thrown);
                            } catch (Throwable again) {
                                log.warn("subscriber of {} threw from onError too", name, again);
                            }
                        }
                        break;
                    }
                }
                missed = wip.addAndGet(-missed);
            } while (missed != 0);
        }
    }
}
