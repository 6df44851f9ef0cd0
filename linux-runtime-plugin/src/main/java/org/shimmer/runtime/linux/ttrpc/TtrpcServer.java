package org.shimmer.runtime.linux.ttrpc;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.socket.nio.NioChannelOption;
import io.netty.util.concurrent.ScheduledFuture;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.BindException;
import jdk.net.UnixDomainPrincipal;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import jdk.net.ExtendedSocketOptions;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.ttrpc.proto.KeyValue;
import org.shimmer.runtime.linux.ttrpc.proto.Request;
import org.shimmer.runtime.linux.ttrpc.proto.Response;
import org.shimmer.runtime.linux.ttrpc.proto.Status;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.reactivestreams.Subscription;
import reactor.core.CoreSubscriber;
import reactor.core.Scannable;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Operators;
import reactor.core.scheduler.Scheduler;
import reactor.util.context.Context;
import reactor.util.retry.Retry;
import reactor.netty.ChannelBindException;
import reactor.netty.Connection;
import reactor.netty.DisposableServer;
import reactor.netty.NettyInbound;
import reactor.netty.resources.LoopResources;
import reactor.netty.tcp.TcpServer;

/**
 * A ttRPC server on a unix domain socket. Immutable: every setter returns a modified copy; {@link #bind()} starts
 * a server each time it is subscribed.
 *
 * <p>Behaviour, as containerd/ttrpc v1.1 servers: requests on one connection are handled concurrently and answered
 * in completion order; an unknown service or method is answered with {@link StatusCode#UNIMPLEMENTED}, an
 * undecodable payload with {@link StatusCode#INTERNAL}, an undecodable envelope or an even (server-side) stream
 * id with {@link StatusCode#INVALID_ARGUMENT}, a body over the limit with {@link StatusCode#RESOURCE_EXHAUSTED}
 * (after discarding it; the connection stays usable); frames of unknown types are skipped; a request with a
 * non-zero {@code timeout_nano} has that long: then its handler is cancelled and the answer is
 * {@link StatusCode#DEADLINE_EXCEEDED}; a request that finds {@link #MAX_CONCURRENT_CALLS} calls in progress on its
 * connection is answered {@link StatusCode#RESOURCE_EXHAUSTED}, and the connection is still read.
 */
public final class TtrpcServer {

    /** Calls one connection may have in progress; one more is answered {@link StatusCode#RESOURCE_EXHAUSTED}. */
    public static final int MAX_CONCURRENT_CALLS = 1024;

    private static final Logger log = LoggerFactory.getLogger(TtrpcServer.class);

    private final Path socket;
    private final LoopResources loops;
    private final Scheduler blocking;
    private final Map<String, TtrpcService> services;
    private final PeerPolicy peerPolicy;

    private TtrpcServer(Path socket, LoopResources loops, Scheduler blocking, Map<String, TtrpcService> services,
            PeerPolicy peerPolicy) {
        this.socket = socket;
        this.loops = loops;
        this.blocking = blocking;
        this.services = services;
        this.peerPolicy = peerPolicy;
    }

    /** A server with no socket and no services yet, serving only its own user. */
    public static TtrpcServer create() {
        return new TtrpcServer(null, null, null, Map.of(), null);
    }

    /** The socket file to serve on. Its directory is made 0700 if missing and must be 0700 if present. */
    public TtrpcServer socket(Path socket) {
        return new TtrpcServer(Objects.requireNonNull(socket, "socket").toAbsolutePath(), loops, blocking, services,
                peerPolicy);
    }

    /** The event loops connections run on; owned by the caller, who disposes them. */
    public TtrpcServer runOn(LoopResources loops) {
        return new TtrpcServer(socket, Objects.requireNonNull(loops, "loops"), blocking, services, peerPolicy);
    }

    /** Where file work (preparing and removing the socket file) runs; owned by the caller. */
    public TtrpcServer blockingOn(Scheduler blocking) {
        return new TtrpcServer(socket, loops, Objects.requireNonNull(blocking, "blocking"), services, peerPolicy);
    }

    /** Adds (or replaces) a service. */
    public TtrpcServer service(TtrpcService service) {
        Map<String, TtrpcService> copy = new LinkedHashMap<>(services);
        copy.put(service.name(), service);
        return new TtrpcServer(socket, loops, blocking, Map.copyOf(copy), peerPolicy);
    }

    /** Which peers to serve; by default only processes of this process's own user. */
    public TtrpcServer peerPolicy(PeerPolicy peerPolicy) {
        return new TtrpcServer(socket, loops, blocking, services, Objects.requireNonNull(peerPolicy, "peerPolicy"));
    }

    /**
     * Removes the socket file at {@code socket} if nobody listens on it (a server killed without removing it), under
     * the lock servers bind under, so a server binding there meanwhile keeps its own; leaves a live socket and a file
     * that is not a socket. Blocking. Returns whether it removed a file.
     *
     * @throws IOException naming the path, when it cannot be told or removed
     */
    public static boolean removeIfStale(Path socket) throws IOException {
        if (!Files.exists(socket, LinkOption.NOFOLLOW_LINKS) || !UnixSockets.isSocket(socket)) {
            return false;
        }
        try {
            UnixSockets.removeStale(socket);
        } catch (AddressInUseException served) {
            return false;
        }
        return !Files.exists(socket, LinkOption.NOFOLLOW_LINKS);
    }

    /** Binds and starts serving. */
    public Mono<TtrpcServerHandle> bind() {
        Objects.requireNonNull(socket, "socket must be set before bind");
        Objects.requireNonNull(loops, "loops must be set before bind");
        Objects.requireNonNull(blocking, "blocking must be set before bind");
        boolean direct = UnixSockets.bindName(socket).equals(socket);
        return Mono.fromCallable(() -> {
                    UnixSockets.prepareDirectory(socket);
                    UnixSockets.removeAbandonedBindNames(socket);
                    if (!direct) {
                        UnixSockets.removeStale(socket);
                    }
                    // /proc/self belongs to the process's effective user.
                    return peerPolicy != null ? peerPolicy : PeerPolicy.sameUser(Files.getOwner(Path.of("/proc/self")));
                })
                .subscribeOn(blocking)
                .flatMap(policy -> direct ? bindDirectly(policy) : bindAndPublish(policy))
                // A handle marked handed over can still be dropped on its way here, by an operator of ours that the
                // cancel reached first (a flatMap discards what its cancelled inner emits): nobody would stop it.
                .doOnDiscard(TtrpcServerHandle.class, TtrpcServerHandle::dispose)
                .onErrorMap(error -> error instanceof IOException || error instanceof ChannelBindException,
                        error -> {
                            IOException cause = error instanceof IOException io ? io : bindFailure(error);
                            return new UncheckedIOException("failed to serve ttrpc on " + socket + ": "
                                    + cause.getMessage(), cause);
                        });
    }

    /**
     * Netty's bind failure names the address it bound, the private name; the reason is its cause. An address in use
     * is only possible where the server binds its address directly ({@link UnixSockets#bindName}), and is told by
     * a server listening there now, not by the JDK's message, which the system's locale may translate.
     */
    private IOException bindFailure(Throwable error) {
        Throwable reason = error.getCause() != null ? error.getCause() : error;
        if (reason instanceof BindException && UnixSockets.bindName(socket).equals(socket)
                && listening()) {
            AddressInUseException inUse = new AddressInUseException("cannot bind " + socket
                    + ": another server bound it meanwhile");
            inUse.initCause(error);
            return inUse;
        }
        return new IOException(reason.getMessage() != null ? reason.getMessage() : reason.toString(), error);
    }

    /** Whether a server listens on the address now; false when that cannot be told (the bind failure stands). */
    private boolean listening() {
        try {
            return UnixSockets.isServed(socket);
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Binds the address itself (no room for a private name), holding the directory's lock from the stale check until
     * the server listens. The JDK binds and then listens, two calls: a socket between them refuses connections like
     * a stale one, so a second server's stale check removed the first's socket and bound its own, and both served
     * (a CI run, two servers binding at once).
     */
    private Mono<TtrpcServerHandle> bindDirectly(PeerPolicy policy) {
        // A server waiting for the lock holds no thread meanwhile: the holder needs a blocking one to finish.
        return Mono.defer(() -> {
            long deadline = System.nanoTime() + UnixSockets.lockWait().toNanos();
            return Mono.using(() -> UnixSockets.tryLockDirectory(socket),
                            lock -> lock < 0 ? Mono.<TtrpcServerHandle>error(new DirectoryLocked())
                                    : Mono.fromCallable(() -> {
                                        UnixSockets.removeStaleLocked(socket);
                                        return policy;
                                    }).flatMap(this::bindAndPublish),
                            lock -> {
                                if (lock >= 0) {
                                    LinuxCalls.close(lock);
                                }
                            })
                    .subscribeOn(blocking)
                    .retryWhen(Retry.fixedDelay(Long.MAX_VALUE, Duration.ofMillis(1))
                            .filter(error -> error instanceof DirectoryLocked && System.nanoTime() - deadline < 0))
                    .onErrorMap(DirectoryLocked.class::isInstance,
                            locked -> UnixSockets.directoryStayedLocked(socket));
        });
    }

    /** Another server holds the socket directory's lock: try again shortly. */
    private static final class DirectoryLocked extends RuntimeException {
        DirectoryLocked() {
            super(null, null, false, false);
        }
    }

    /** Binds at a private name and links the socket into place ({@link #publish}). */
    private Mono<TtrpcServerHandle> bindAndPublish(PeerPolicy policy) {
        LiveConnections live = new LiveConnections();
        // Netty removes the address it bound, by path, when the server closes: never the address itself.
        Path bindName = UnixSockets.bindName(socket);
        return TcpServer.create()
                .runOn(loops, false)
                .bindAddress(() -> UnixDomainSocketAddress.of(bindName))
                .doOnConnection(connection -> admit(connection, policy, live))
                .handle((inbound, outbound) -> serve(inbound))
                .bind()
                .flatMap(server -> publish(server, bindName, live));
    }

    /**
     * Links the socket {@code server} bound at {@code bindName} to the address and hands out its handle. A cancel may
     * come at any moment, also while the io thread links the socket: whichever of the two comes second stops the
     * server, closes the connections it accepted meanwhile and removes the linked socket (a cancelled bind left the
     * server serving, and its socket). Once the handle is handed to the subscriber it is the subscriber's, as
     * reactor-netty's own {@code DisposableServer}: a cancel after that ({@code take(1)}, {@code next()},
     * {@code blockFirst()} cancel as the value arrives, on its thread or after a {@code publishOn}) does not stop it.
     */
    private Mono<TtrpcServerHandle> publish(DisposableServer server, Path bindName, LiveConnections live) {
        AtomicReference<TtrpcServerHandle> made = new AtomicReference<>();
        AtomicBoolean cancelled = new AtomicBoolean();
        AtomicBoolean handedOver = new AtomicBoolean();
        return Mono.fromCallable(() -> {
                    TtrpcServerHandle handle = new TtrpcServerHandle(server, socket,
                            UnixSockets.publish(bindName, socket), bindName.equals(socket), live, blocking);
                    made.set(handle);
                    if (cancelled.get()) {
                        handle.dispose();
                    }
                    return handle;
                })
                .subscribeOn(blocking)
                .doOnCancel(() -> {
                    if (handedOver.get()) {
                        return;
                    }
                    cancelled.set(true);
                    TtrpcServerHandle handle = made.get();
                    if (handle != null) {
                        handle.dispose();
                    } else {
                        server.dispose();
                        live.close().subscribe(closed -> {}, error -> {});
                    }
                })
                .transform(Operators.<TtrpcServerHandle, TtrpcServerHandle>lift(
                        (scannable, actual) -> new HandOver<>(actual, handedOver)))
                // Not disposeNow(): it blocks, here on the io thread whose task failed.
                .onErrorResume(error -> Mono.fromRunnable(server::dispose)
                        .then(live.close())
                        .then(server.onDispose())
                        .then(Mono.error(error)));
    }

    /**
     * Passes every signal on, and marks the moment a value is handed downstream, before the subscriber sees it. It
     * stands between its neighbours' subscriptions, so no operator can fuse across it and take the value unmarked.
     */
    private static final class HandOver<T> implements CoreSubscriber<T>, Subscription, Scannable {

        private final CoreSubscriber<? super T> actual;
        private final AtomicBoolean handedOver;
        private Subscription upstream;

        HandOver(CoreSubscriber<? super T> actual, AtomicBoolean handedOver) {
            this.actual = actual;
            this.handedOver = handedOver;
        }

        @Override
        public void onSubscribe(Subscription subscription) {
            upstream = subscription;
            actual.onSubscribe(this);
        }

        @Override
        public void onNext(T value) {
            handedOver.set(true);
            actual.onNext(value);
        }

        @Override
        public void onError(Throwable error) {
            actual.onError(error);
        }

        @Override
        public void onComplete() {
            actual.onComplete();
        }

        @Override
        public void request(long n) {
            upstream.request(n);
        }

        @Override
        public void cancel() {
            upstream.cancel();
        }

        @Override
        public Context currentContext() {
            return actual.currentContext();
        }

        @Override
        @SuppressWarnings("rawtypes") // Scannable declares it with the raw type
        public Object scanUnsafe(Attr key) {
            if (key == Attr.PARENT) {
                return upstream;
            }
            if (key == Attr.ACTUAL) {
                return actual;
            }
            return key == Attr.RUN_STYLE ? Attr.RunStyle.SYNC : null;
        }
    }

    private void admit(Connection connection, PeerPolicy policy, LiveConnections live) {
        UnixDomainPrincipal peer = peerOf(connection.channel());
        if (peer == null || !policy.admits(peer)) {
            log.warn("ttrpc {}: refusing a connection from {}", socket, peer == null ? "an unknown peer"
                    : "uid " + peer.user().getName() + " gid " + peer.group().getName());
            connection.dispose();
            return;
        }
        if (!live.admit(connection)) {
            // The server is stopping (or its bind was cancelled): accepted, but not served.
            connection.dispose();
            return;
        }
        connection.onDispose(() -> live.remove(connection));
        connection.addHandlerFirst(TtrpcClient.FLUSH_CONSOLIDATION, TtrpcClient.flushConsolidation());
        connection.addHandlerLast("ttrpc-frame-decoder", new FrameDecoder());
        connection.addHandlerLast("ttrpc-writability", new Writability());
    }

    private static UnixDomainPrincipal peerOf(Channel channel) {
        try {
            return channel.config().getOption(NioChannelOption.of(ExtendedSocketOptions.SO_PEERCRED));
        } catch (RuntimeException e) {
            log.warn("could not read the peer credentials of {}", channel, e);
            return null;
        }
    }

    private Mono<Void> serve(NettyInbound inbound) {
        Connection[] connection = new Connection[1];
        inbound.withConnection(c -> connection[0] = c);
        Channel channel = connection[0].channel();
        Writability writability = channel.pipeline().get(Writability.class);
        if (writability == null) {
            // Refused as it was accepted (admit): closed, not served.
            return Mono.empty();
        }
        AtomicInteger inProgress = new AtomicInteger();
        // Reading stops only while answers wait to be written: then a peer that goes is seen as the write fails.
        // Stopped by calls in progress (a Wait each), it was never seen, nor the peer's next call: the Kill that
        // would have ended them waited behind them, and a peer that went left its connection and calls for good.
        return inbound.receiveObject()
                .ofType(InboundFrame.class)
                // The next call is read only once the answers the peer left unread are under the low-water mark: it
                // read on, and a peer that never reads had up to twice the limit of answers, 4 MiB each, held.
                .concatMap(frame -> channel.isWritable() ? Mono.just(frame)
                        : writability.whenWritable(channel).thenReturn(frame), 0)
                .flatMap(frame -> answer(channel, frame, inProgress)
                        .flatMap(response -> write(channel, frame.streamId(), response)), 2 * MAX_CONCURRENT_CALLS)
                // A handler still running when the peer goes is cancelled, not left holding the connection.
                .takeUntilOther(connection[0].onDispose())
                .then();
    }

    private Mono<Response> answer(Channel channel, InboundFrame frame, AtomicInteger inProgress) {
        return switch (frame) {
            case InboundFrame.RequestFrame request ->
                    dispatch(channel, request.streamId(), request.request(), inProgress);
            case InboundFrame.OversizedFrame oversized -> oversized.type() == Frames.TYPE_REQUEST
                    ? Mono.just(status(StatusCode.RESOURCE_EXHAUSTED, "message length " + oversized.length()
                            + " exceed maximum message size of " + Frames.MAX_BODY_LENGTH))
                    : Mono.empty();
            case InboundFrame.MalformedFrame malformed -> malformed.type() == Frames.TYPE_REQUEST
                    ? Mono.just(status(StatusCode.INVALID_ARGUMENT, "unmarshal request error: " + malformed.error()))
                    : Mono.empty();
            case InboundFrame.ResponseFrame response -> Mono.empty();
            case InboundFrame.UnknownTypeFrame unknown -> Mono.empty();
        };
    }

    private Mono<Response> dispatch(Channel channel, int streamId, Request request, AtomicInteger inProgress) {
        if ((streamId & 1) == 0) {
            return Mono.just(status(StatusCode.INVALID_ARGUMENT,
                    "StreamID must be odd for client initiated streams"));
        }
        TtrpcService service = services.get(request.getService());
        if (service == null) {
            return Mono.just(status(StatusCode.UNIMPLEMENTED, "service " + request.getService()));
        }
        TtrpcService.Method<?> method = service.find(request.getMethod());
        if (method == null) {
            return Mono.just(status(StatusCode.UNIMPLEMENTED, "method " + request.getMethod()));
        }
        Mono<Response> answer = invoke(method, call(streamId, request), request.getPayload());
        Mono<Response> bounded = request.getTimeoutNano() == 0 ? answer
                : Mono.firstWithSignal(answer, deadline(channel, request));
        return Mono.defer(() -> {
            if (inProgress.incrementAndGet() > MAX_CONCURRENT_CALLS) {
                inProgress.decrementAndGet();
                return Mono.just(status(StatusCode.RESOURCE_EXHAUSTED, "ttrpc: " + MAX_CONCURRENT_CALLS
                        + " calls are in progress on this connection already"));
            }
            return bounded.doFinally(signal -> inProgress.decrementAndGet());
        });
    }

    /**
     * Answers {@link StatusCode#DEADLINE_EXCEEDED} once the client's {@code timeout_nano} has passed, as
     * containerd's server, which runs the handler under a context with that deadline; winning the race cancels
     * the handler. Zero is no deadline; a negative one (Go sends what was left of its context) has passed already.
     */
    private static Mono<Response> deadline(Channel channel, Request request) {
        long nanos = request.getTimeoutNano();
        return Mono.create(sink -> {
            ScheduledFuture<?> timer = channel.eventLoop().schedule(() -> sink.success(status(
                    StatusCode.DEADLINE_EXCEEDED, "context deadline exceeded: " + request.getService() + "/"
                            + request.getMethod() + " took longer than " + Duration.ofNanos(nanos))),
                    Math.max(0, nanos), TimeUnit.NANOSECONDS);
            sink.onDispose(() -> timer.cancel(false));
        });
    }

    private static <Q extends MessageLite> Mono<Response> invoke(
            TtrpcService.Method<Q> method, ServerCall call, ByteString payload) {
        Q decoded;
        try {
            decoded = method.requestParser().parseFrom(payload);
        } catch (InvalidProtocolBufferException e) {
            return Mono.just(status(StatusCode.INTERNAL, "ttrpc: error unmarshalling payload: " + e.getMessage()));
        }
        return Mono.defer(() -> method.handler().apply(call, decoded))
                .map(result -> Response.newBuilder().setPayload(result.toByteString()).build())
                .defaultIfEmpty(Response.getDefaultInstance())
                .onErrorResume(error -> Mono.just(statusOf(call, error)));
    }

    private static ServerCall call(int streamId, Request request) {
        Map<String, String> metadata = new LinkedHashMap<>();
        for (KeyValue entry : request.getMetadataList()) {
            metadata.putIfAbsent(entry.getKey(), entry.getValue());
        }
        return new ServerCall(request.getService(), request.getMethod(), streamId, Map.copyOf(metadata),
                request.getTimeoutNano());
    }

    private static Response statusOf(ServerCall call, Throwable error) {
        if (error instanceof TtrpcStatusException status) {
            return status(status.code(), status.statusMessage());
        }
        log.debug("ttrpc handler {}/{} failed", call.service(), call.method(), error);
        String message = error.getMessage();
        return status(StatusCode.UNKNOWN, message != null ? message : error.getClass().getName());
    }

    private static Response status(StatusCode code, String message) {
        return Response.newBuilder()
                .setStatus(Status.newBuilder().setCode(code.value()).setMessage(message))
                .build();
    }

    private static Mono<Void> write(Channel channel, int streamId, Response response) {
        return Mono.create(sink -> {
            ByteBuf frame;
            try {
                frame = Frames.encode(channel.alloc(), streamId, Frames.TYPE_RESPONSE, response);
            } catch (TtrpcMessageTooLargeException e) {
                frame = Frames.encode(channel.alloc(), streamId, Frames.TYPE_RESPONSE,
                        status(StatusCode.RESOURCE_EXHAUSTED, "response " + e.getMessage()));
            }
            // A peer that is gone cannot be answered; that is not the handler's failure.
            channel.writeAndFlush(frame).addListener(written -> sink.success());
        });
    }
}
