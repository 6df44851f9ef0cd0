package org.shimmer.runtime.linux.shim.remote;

import com.google.protobuf.Empty;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.shim.TaskEvents;
import org.shimmer.runtime.linux.shim.proto.ForwardRequest;
import org.shimmer.runtime.linux.ttrpc.CallOptions;
import org.shimmer.runtime.linux.ttrpc.TtrpcClient;
import org.shimmer.runtime.linux.ttrpc.TtrpcConnection;
import org.shimmer.runtime.linux.ttrpc.TtrpcServer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import reactor.util.concurrent.Queues;

/**
 * Forwards the local shims' task events to the state root's events server when another process serves it, as a
 * remote shim forwards its own ({@code Events/Forward}): without it a run through the local shim never showed in
 * another process's {@code events}. When this process serves the socket, its exchange has the events already and
 * nothing is sent (no double delivery).
 *
 * <p>Publishing never waits: envelopes wait in a bounded queue ({@link #CAPACITY}), sent one at a time in order
 * over one connection; when the queue is full they are dropped, counted and logged. One the server does not take
 * (nobody serves the socket, the usual case) is dropped quietly. On dispose what is queued gets {@link #DRAIN} to go
 * out: a CLI's run ends with its container's last events, and exits right after.
 */
public final class EventForwarder implements Disposable {

    /** How many envelopes may wait for the server. */
    static final int CAPACITY = 1024;

    /** How long one Forward may take before its envelope is dropped. */
    static final Duration FORWARD_TIMEOUT = Duration.ofSeconds(5);

    /** How long dispose waits for the queued envelopes to be sent. */
    static final Duration DRAIN = Duration.ofSeconds(2);

    private static final Logger log = LoggerFactory.getLogger(EventForwarder.class);

    private final Path socket;
    private final RuntimeResources resources;
    private final RemoteShimRegistry registry;
    private final Sinks.Many<Envelope> queue = Sinks.many().unicast()
            .onBackpressureBuffer(Queues.<Envelope>get(CAPACITY).get());
    private final AtomicLong dropped = new AtomicLong();
    private final Disposable sending;
    private final CountDownLatch drained = new CountDownLatch(1);
    /** The connection to the server; touched only by the one sender at a time, on any io thread. */
    private volatile TtrpcConnection connection;

    EventForwarder(Path socket, RuntimeResources resources, RemoteShimRegistry registry) {
        this.socket = socket;
        this.resources = resources;
        this.registry = registry;
        // Publishers only queue: encoding and sending happen on io, one envelope after another, each subscribed
        // there: the next one starts on whichever thread ended the last (a Forward's reply comes on an event loop,
        // which must not encode or stat), and publishOn would hand it on there too (review).
        this.sending = queue.asFlux()
                .concatMap(envelope -> Mono.defer(() -> send(envelope)).subscribeOn(resources.io())
                        // An io scheduler that refuses the task (full, or closing) costs this envelope only: an
                        // error here would end the forwarding for good.
                        .onErrorResume(refused -> {
                            log.debug("the {} event of {} was not forwarded to {}: {}", envelope.topic(),
                                    envelope.namespace(), socket, refused.toString());
                            return Mono.empty();
                        }), 1)
                .doFinally(end -> drained.countDown())
                .subscribe(sent -> {}, error -> log.debug("events for {} are no longer forwarded: {}", socket,
                        error.toString()));
    }

    /** Queues {@code envelope} for the server, if it is a task event; never waits. */
    public void offer(Envelope envelope) {
        // Nobody serves the socket, the usual case: nothing is queued, and no thread woken for it (each wake cost
        // the lifecycle a sixth of a millisecond on two cores). An access() of a local path, never waiting on a
        // peer; followed like connect() follows it, and without the exception the JDK throws and catches for a
        // missing file when asked not to follow (four per local lifecycle).
        if (!(envelope.event() instanceof TaskEvent) || registry.serves(socket) || !Files.exists(socket)) {
            return;
        }
        Sinks.EmitResult result;
        // The queue takes one producer at a time; publishers come from any thread.
        synchronized (queue) {
            result = queue.tryEmitNext(envelope);
        }
        if (result == Sinks.EmitResult.FAIL_TERMINATED) {
            // Disposed with its runtime: nothing is forwarded any more, and that is no loss worth a warning.
            return;
        }
        if (result.isFailure()) {
            long total = dropped.incrementAndGet();
            log.warn("dropped the {} event of {} for {} ({}; {} dropped in all)", envelope.topic(),
                    envelope.namespace(), socket, result, total);
        }
    }

    /** How many envelopes were dropped because the queue was full. */
    public long dropped() {
        return dropped.get();
    }

    /** Sends one envelope; on io, so the socket is looked for here. */
    private Mono<Void> send(Envelope envelope) {
        // No socket, no server: nothing is encoded or dialed.
        if (registry.serves(socket) || !Files.exists(socket)) {
            return Mono.empty();
        }
        ForwardRequest request = TaskEvents.forwardRequest(envelope);
        // Dialed only when the socket exists, so a runtime nobody listens to never starts its network loops for
        // this (they hold descriptors a test saw as leaked). A connection to a server that went away fails once;
        // the next try dials the one that serves now.
        return Mono.defer(() -> connected()
                        .flatMap(server -> server.call(ShimEventsServer.SERVICE, "Forward", request, Empty.parser(),
                                CallOptions.defaults().withTimeout(FORWARD_TIMEOUT)))
                        .doOnError(failed -> disconnect()))
                .retry(1)
                .then()
                .onErrorResume(failed -> {
                    // Nobody serves the socket (the usual case with no events reader): not worth a warning.
                    log.debug("the {} event of {} was not forwarded to {}: {}", envelope.topic(),
                            envelope.namespace(), socket, failed.toString());
                    // The failure may come on an event loop: the look at the file is io's.
                    return Mono.fromRunnable(this::removeIfStale).subscribeOn(resources.io()).then();
                });
    }

    /**
     * Removes the socket when nobody listens on it: a process that served it and was killed (a CLI's {@code run -d}
     * or {@code wait} by SIGKILL) left it, and every local event after it dialed it twice and was refused, until
     * another process bound the socket again. Under the lock servers bind under, so a live one is never removed.
     */
    private void removeIfStale() {
        try {
            if (TtrpcServer.removeIfStale(socket)) {
                log.info("removed {}: nobody served it any more", socket);
            }
        } catch (IOException e) {
            log.debug("cannot tell whether {} is stale: {}", socket, e.toString());
        }
    }

    private Mono<TtrpcConnection> connected() {
        if (connection != null && !connection.isDisposed()) {
            return Mono.just(connection);
        }
        return TtrpcClient.create().socket(socket).runOn(resources.loops())
                .connectTimeout(RemoteShims.DIAL_TIMEOUT).connect()
                .doOnNext(made -> connection = made);
    }

    private void disconnect() {
        if (connection != null) {
            connection.dispose();
            connection = null;
        }
    }

    /** Sends what is queued, waiting at most {@link #DRAIN}, then closes the connection. */
    @Override
    public void dispose() {
        synchronized (queue) {
            queue.tryEmitComplete();
        }
        try {
            if (!drained.await(DRAIN.toMillis(), TimeUnit.MILLISECONDS)) {
                log.warn("events queued for {} were not all sent within {}", socket, DRAIN);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        sending.dispose();
        disconnect();
    }

    @Override
    public boolean isDisposed() {
        return sending.isDisposed();
    }
}
