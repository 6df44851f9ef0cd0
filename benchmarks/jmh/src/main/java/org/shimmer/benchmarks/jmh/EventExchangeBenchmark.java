package org.shimmer.benchmarks.jmh;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.shimmer.runtime.events.Backlog;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.EventFilter;
import org.shimmer.runtime.events.InMemoryEventExchange;
import org.shimmer.runtime.events.task.TaskEvent;
import reactor.core.Disposable;

/**
 * Envelopes delivered per second to each subscriber of an {@link InMemoryEventExchange}, with 1 and 8 subscribers.
 *
 * <p>An operation is one envelope published and received by every subscriber: each invocation publishes a batch
 * and returns only once every subscriber has taken all of it, so a publish the exchange accepted but never
 * delivered (dropped by an overflow policy) is not counted; a drop fails the iteration. The batch is smaller than
 * the default backlog, so nothing is dropped while the subscribers keep up. Run with {@code -prof gc}:
 * {@code gc.alloc.rate.norm} is then the bytes allocated per envelope by every thread, delivery threads included.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class EventExchangeBenchmark {

    /** Envelopes per invocation; below {@link Backlog#DEFAULT_CAPACITY}, so a keeping-up subscriber drops none. */
    static final int BATCH = 1000;

    private static final String NAMESPACE = "bench";
    private static final long DELIVERY_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(10);

    @Param({"1", "8"})
    public int subscribers;

    private final TaskEvent event = new TaskEvent.TaskExit("bench-container", "bench-container", 4242, 0,
            Instant.EPOCH);
    private final List<Receiver> receivers = new ArrayList<>();
    private final List<Disposable> subscriptions = new ArrayList<>();
    private final Consumer<Throwable> onPublishError = error -> publishError = error;
    private volatile Throwable publishError;
    private InMemoryEventExchange exchange;
    private long published;

    @Setup(Level.Trial)
    public void subscribe() {
        // What hosts use: the default exchange, delivering on Reactor's bounded elastic scheduler.
        exchange = new InMemoryEventExchange();
        EventFilter filter = EventFilter.all().withNamespace(NAMESPACE);
        for (int i = 0; i < subscribers; i++) {
            Receiver receiver = new Receiver();
            receivers.add(receiver);
            subscriptions.add(exchange.subscribe(filter, Backlog.defaults()).subscribe(receiver));
        }
    }

    @TearDown(Level.Iteration)
    public void checkNothingDropped() {
        if (exchange.dropped() != 0) {
            throw new IllegalStateException("the exchange dropped " + exchange.dropped() + " envelopes");
        }
    }

    @TearDown(Level.Trial)
    public void unsubscribe() {
        subscriptions.forEach(Disposable::dispose);
        exchange.dispose();
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void publishAndDeliver() {
        long target = published + BATCH;
        Thread self = Thread.currentThread();
        for (Receiver receiver : receivers) {
            receiver.waiter = self;
            receiver.target = target;
        }
        for (int i = 0; i < BATCH; i++) {
            exchange.publish(NAMESPACE, "/tasks/exit", event).subscribe(null, onPublishError);
        }
        published = target;
        long deadline = System.nanoTime() + DELIVERY_TIMEOUT_NANOS;
        for (Receiver receiver : receivers) {
            while (receiver.received < target) {
                if (publishError != null || System.nanoTime() > deadline) {
                    throw new IllegalStateException("a subscriber received " + receiver.received + " of " + target
                            + " envelopes; dropped " + exchange.dropped() + ", publish error " + publishError,
                            publishError);
                }
                LockSupport.parkNanos(this, TimeUnit.MILLISECONDS.toNanos(1));
            }
        }
    }

    /** Counts what one subscriber received and wakes the benchmark thread once a batch is all in. */
    private static final class Receiver implements Consumer<Envelope> {
        volatile Thread waiter;
        volatile long target;
        /** Written only by the subscription's serialized onNext. */
        volatile long received;

        @Override
        public void accept(Envelope envelope) {
            long now = received + 1;
            received = now;
            if (now == target) {
                LockSupport.unpark(waiter);
            }
        }
    }
}
