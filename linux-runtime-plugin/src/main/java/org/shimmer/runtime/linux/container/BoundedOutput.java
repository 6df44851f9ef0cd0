package org.shimmer.runtime.linux.container;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.reactivestreams.Publisher;
import org.reactivestreams.Subscriber;
import org.reactivestreams.Subscription;
import org.shimmer.runtime.FailedPreconditionException;
import reactor.core.Disposable;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Operators;

/**
 * One output stream of a container's process, read continuously and held in a buffer of at most {@code bound}
 * bytes until someone reads it.
 *
 * <p>The shim's streams are read only as fast as they are consumed, so a host that ignored one stalled the process
 * once the pipe filled (issue 11). Here the source is always drained at once; bytes wait in the buffer only while
 * no subscriber asks for them, and when the buffer would exceed the bound the oldest bytes go first (a reader who
 * comes late sees the most recent output) and are counted in {@link #droppedBytes()}. A subscriber that keeps
 * requesting gets every byte, in order. One subscriber at a time: a second one while the first is subscribed gets
 * {@link FailedPreconditionException}; a subscriber that cancels leaves the stream running, and the next one gets
 * what was buffered since and what follows. Once the source ended and the buffer is empty, every subscriber gets
 * the end (or the source's error) at once.
 */
final class BoundedOutput {

    private final String name;
    private final int bound;
    private final ArrayDeque<byte[]> chunks = new ArrayDeque<>();
    private final AtomicInteger wip = new AtomicInteger();
    private long buffered;
    private long dropped;
    private boolean ended;
    private Throwable failure;
    private Reader reader;
    private Disposable source;

    /**
     * @param name what the stream is, for messages: {@code stdout of container ns/id}
     * @param bound the most bytes held for nobody, at least 0
     */
    BoundedOutput(String name, int bound) {
        this.name = name;
        this.bound = bound;
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

    /** Bytes dropped so far because nobody read them and the buffer was full. */
    synchronized long droppedBytes() {
        return dropped;
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
        // An ended stream ends for a subscriber that has not asked for anything yet too.
        drain();
    }

    private void detach(Reader gone) {
        synchronized (this) {
            if (reader == gone) {
                reader = null;
            }
        }
        drain();
    }

    private void offer(byte[] chunk) {
        if (chunk.length == 0) {
            return;
        }
        synchronized (this) {
            chunks.add(chunk);
            buffered += chunk.length;
        }
        drain();
    }

    private void fail(Throwable error) {
        synchronized (this) {
            if (!ended) {
                failure = error;
                ended = true;
            }
        }
        drain();
    }

    private void end() {
        synchronized (this) {
            ended = true;
        }
        drain();
    }

    /**
     * Hands buffered chunks to the reader as far as it asked, then trims what is left to the bound. One thread at
     * a time runs the loop (the source's, or a reader's request); others leave it a note to go round again.
     */
    private void drain() {
        if (wip.getAndIncrement() != 0) {
            return;
        }
        int missed = 1;
        do {
            for (;;) {
                Reader current;
                byte[] next = null;
                Throwable error = null;
                synchronized (this) {
                    current = reader;
                    if (current == null || (!chunks.isEmpty() && current.requested.get() == 0)) {
                        trim();
                        break;
                    }
                    if (!chunks.isEmpty()) {
                        next = chunks.poll();
                        buffered -= next.length;
                    } else if (ended) {
                        reader = null;
                        error = failure;
                    } else {
                        break;
                    }
                }
                if (next != null) {
                    current.deliver(next);
                } else if (error != null) {
                    current.actual.onError(error);
                } else {
                    current.actual.onComplete();
                }
            }
            missed = wip.addAndGet(-missed);
        } while (missed != 0);
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

    /** The one subscriber's subscription: its demand, and its cancel, which frees the stream for the next one. */
    private final class Reader implements Subscription {

        private final Subscriber<? super byte[]> actual;
        private final AtomicLong requested = new AtomicLong();

        Reader(Subscriber<? super byte[]> actual) {
            this.actual = actual;
        }

        /** Called by the drain loop only, with demand left: one chunk handed on, one request used. */
        void deliver(byte[] chunk) {
            requested.getAndUpdate(left -> left == Long.MAX_VALUE ? left : left - 1);
            actual.onNext(chunk);
        }

        @Override
        public void request(long n) {
            if (Operators.validate(n)) {
                requested.getAndUpdate(left -> Operators.addCap(left, n));
                drain();
            }
        }

        @Override
        public void cancel() {
            detach(this);
        }
    }
}
