package org.shimmer.runtime.linux.ttrpc;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.util.concurrent.ScheduledFuture;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import org.shimmer.runtime.linux.ttrpc.proto.Response;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;
import reactor.core.publisher.MonoSink;
import reactor.core.publisher.Sinks;
import reactor.netty.Connection;

/**
 * One client connection: any number of concurrent unary calls, each on its own odd stream id, answered in the
 * order the server completes them.
 *
 * <p>Invariants: the inbound side is subscribed once, here, and routes each response to its stream; a stream is
 * in {@link #pending} from the moment its request may be written until it is answered, times out (only when its
 * caller gave a timeout: none is the default, as in containerd's client), is cancelled or the connection closes —
 * whichever comes first removes it, and only the remover signals the caller; once the connection has closed,
 * every pending call and every later call fails with {@link TtrpcClosedException}, and the close hooks have run
 * exactly once.
 */
public final class TtrpcConnection implements Disposable {

    private static final Logger log = LoggerFactory.getLogger(TtrpcConnection.class);

    private final Connection connection;
    private final Channel channel;
    private final String peer;
    private final CallOptions defaults;
    private final List<Runnable> closeHooks;
    private final Map<Integer, PendingCall<?>> pending = new ConcurrentHashMap<>();
    private final AtomicInteger nextStreamId = new AtomicInteger(1);
    private final AtomicBoolean closed = new AtomicBoolean();
    private final Sinks.Empty<Void> onClose = Sinks.empty();

    TtrpcConnection(Connection connection, String peer, CallOptions defaults, List<Runnable> closeHooks) {
        this.connection = connection;
        this.channel = connection.channel();
        this.peer = peer;
        this.defaults = defaults;
        this.closeHooks = closeHooks;
        connection.onDispose(this::onClosed);
        connection.inbound().receiveObject().subscribe(
                this::onFrame,
                error -> {
                    log.debug("ttrpc connection to {} failed", peer, error);
                    connection.dispose();
                },
                connection::dispose);
    }

    /** Calls {@code service}/{@code method} with the connection's default options. */
    public <T> Mono<T> call(String service, String method, MessageLite request, Parser<T> responseParser) {
        return call(service, method, request, responseParser, defaults);
    }

    /**
     * Calls {@code service}/{@code method}. Lazy: the request is sent on subscription. Cancelling frees the
     * stream; a late answer is then dropped.
     *
     * @return the decoded response; or fails with {@link TtrpcStatusException} (the server's status),
     *     {@link TtrpcTimeoutException} (only if {@code options} has a timeout), {@link TtrpcClosedException} or
     *     {@link TtrpcMessageTooLargeException}
     */
    public <T> Mono<T> call(
            String service, String method, MessageLite request, Parser<T> responseParser, CallOptions options) {
        Objects.requireNonNull(service, "service");
        Objects.requireNonNull(method, "method");
        Objects.requireNonNull(request, "request");
        Objects.requireNonNull(responseParser, "responseParser");
        Objects.requireNonNull(options, "options");
        return Mono.create(sink -> start(sink, service, method, request, responseParser, options));
    }

    /** Completes once, when the connection has closed for whatever reason. */
    public Mono<Void> onClose() {
        return onClose.asMono();
    }

    /** Closes the connection; pending calls fail with {@link TtrpcClosedException}. Returns at once. */
    @Override
    public void dispose() {
        connection.dispose();
    }

    /** Closes the connection and completes when it has closed. */
    public Mono<Void> disposeLater() {
        return Mono.defer(() -> {
            connection.dispose();
            return onClose();
        });
    }

    @Override
    public boolean isDisposed() {
        return closed.get();
    }

    /** Calls waiting for an answer; for tests and diagnostics. */
    int pendingCalls() {
        return pending.size();
    }

    private <T> void start(MonoSink<T> sink, String service, String method, MessageLite request, Parser<T> parser,
            CallOptions options) {
        if (closed.get()) {
            sink.error(closedError(service + "/" + method));
            return;
        }
        ByteBuf frame;
        Integer streamId = allocateStreamId();
        try {
            frame = Frames.encodeRequest(channel.alloc(), streamId, service, method, request, options.timeoutNanos(),
                    options.metadata());
        } catch (TtrpcMessageTooLargeException e) {
            sink.error(new TtrpcMessageTooLargeException(service + "/" + method + ": request " + e.getMessage(),
                    e.length()));
            return;
        }
        PendingCall<T> call = new PendingCall<>(service, method, peer, sink, parser, options.timeout());
        pending.put(streamId, call);
        sink.onDispose(() -> {
            if (pending.remove(streamId, call)) {
                call.cancelTimeout();
            }
        });
        // The close may have raced the put: then nobody else will fail this call.
        if (closed.get() && pending.remove(streamId, call)) {
            frame.release();
            sink.error(closedError(call.name()));
            return;
        }
        options.timeout().ifPresent(timeout -> call.timeout = channel.eventLoop().schedule(() -> {
            if (pending.remove(streamId, call)) {
                sink.error(call.timedOut(""));
            }
        }, timeout.toNanos(), TimeUnit.NANOSECONDS));
        // Cancelled before the timer existed: nobody else will cancel it, and nothing needs sending.
        if (pending.get(streamId) != call) {
            call.cancelTimeout();
            frame.release();
            return;
        }
        ChannelFutureListener onWritten = written -> {
            if (!written.isSuccess() && pending.remove(streamId, call)) {
                call.cancelTimeout();
                sink.error(new TtrpcClosedException(call.name() + ": could not send on ttrpc connection to " + peer,
                        written.cause()));
            }
        };
        ChannelFuture written = channel.writeAndFlush(frame);
        // A write refused by an event loop that has shut down (its resources closed under a call: a plugin stop)
        // is failed at once, and a listener added then would be refused as well, never run: the call waited for
        // good (CI, RemoteShimTest). So a finished write is looked at here.
        if (written.isDone()) {
            try {
                onWritten.operationComplete(written);
            } catch (Exception e) {
                sink.error(e);
            }
        } else {
            written.addListener(onWritten);
        }
    }

    private Integer allocateStreamId() {
        // Odd ids only, wrapping through the full uint32 range; skip one still in use after a wrap. Boxed once,
        // here: the same key serves every map operation of the call.
        Integer id;
        do {
            id = nextStreamId.getAndAdd(2);
        } while (pending.containsKey(id));
        return id;
    }

    private void onFrame(Object message) {
        if (!(message instanceof InboundFrame frame)) {
            return;
        }
        switch (frame) {
            case InboundFrame.ResponseFrame response -> {
                PendingCall<?> call = pending.remove(response.streamId());
                if (call == null) {
                    log.debug("ttrpc {}: dropped a response for stream {} that no call waits for", peer,
                            Integer.toUnsignedString(response.streamId()));
                    return;
                }
                call.complete(response.response());
            }
            case InboundFrame.OversizedFrame oversized -> fail(oversized.streamId(),
                    call -> new TtrpcMessageTooLargeException(call.name() + ": response length " + oversized.length()
                            + " exceeds the maximum message size of " + Frames.MAX_BODY_LENGTH, oversized.length()));
            case InboundFrame.MalformedFrame malformed -> fail(malformed.streamId(),
                    call -> new TtrpcException(call.name() + ": undecodable response: " + malformed.error()));
            case InboundFrame.RequestFrame request -> log.debug("ttrpc {}: ignored a request from the server", peer);
            case InboundFrame.UnknownTypeFrame unknown ->
                    log.debug("ttrpc {}: skipped a frame of unknown type {}", peer, unknown.type());
        }
    }

    private void fail(int streamId, Function<PendingCall<?>, Throwable> error) {
        PendingCall<?> call = pending.remove(streamId);
        if (call != null) {
            call.cancelTimeout();
            call.sink.error(error.apply(call));
        }
    }

    private void onClosed() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        for (Integer streamId : pending.keySet()) {
            PendingCall<?> call = pending.remove(streamId);
            if (call != null) {
                call.cancelTimeout();
                call.sink.error(closedError(call.name()));
            }
        }
        for (Runnable hook : closeHooks) {
            try {
                hook.run();
            } catch (RuntimeException e) {
                log.warn("ttrpc {}: a close hook failed", peer, e);
            }
        }
        onClose.tryEmitEmpty();
    }

    private TtrpcClosedException closedError(String name) {
        return new TtrpcClosedException(name + ": ttrpc connection to " + peer + " closed");
    }

    /** A call waiting for its answer. */
    private static final class PendingCall<T> {
        final String service;
        final String method;
        final MonoSink<T> sink;
        final Parser<T> parser;
        final String peer;
        final Optional<Duration> deadline;
        volatile ScheduledFuture<?> timeout;

        PendingCall(String service, String method, String peer, MonoSink<T> sink, Parser<T> parser,
                Optional<Duration> deadline) {
            this.service = service;
            this.method = method;
            this.peer = peer;
            this.sink = sink;
            this.parser = parser;
            this.deadline = deadline;
        }

        /** What error messages call it; built only for them. */
        String name() {
            return service + "/" + method;
        }

        void complete(Response response) {
            cancelTimeout();
            if (response.hasStatus() && response.getStatus().getCode() != StatusCode.OK.value()) {
                StatusCode code = StatusCode.of(response.getStatus().getCode());
                // The server enforces the deadline we sent and may answer just before our own timer fires: the
                // caller sees one exception for "the deadline passed", whichever side noticed first.
                sink.error(code == StatusCode.DEADLINE_EXCEEDED && deadline.isPresent()
                        ? timedOut(": the server said " + response.getStatus().getMessage())
                        : new TtrpcStatusException(code, response.getStatus().getMessage()));
                return;
            }
            T decoded;
            try {
                decoded = parser.parseFrom(response.getPayload());
            } catch (InvalidProtocolBufferException e) {
                sink.error(new TtrpcException(name() + ": undecodable response payload: " + e.getMessage(), e));
                return;
            }
            sink.success(decoded);
        }

        TtrpcTimeoutException timedOut(String detail) {
            return new TtrpcTimeoutException(name() + " had no answer within " + deadline.orElseThrow()
                    + " on ttrpc connection to " + peer + detail);
        }

        void cancelTimeout() {
            ScheduledFuture<?> scheduled = timeout;
            if (scheduled != null) {
                scheduled.cancel(false);
            }
        }
    }
}
