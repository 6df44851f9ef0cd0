package org.shimmer.runtime.linux.ttrpc;

import io.netty.channel.Channel;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.nio.NioChannelOption;
import io.netty.handler.flush.FlushConsolidationHandler;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;
import reactor.core.publisher.Mono;
import reactor.netty.resources.ConnectionProvider;
import reactor.netty.resources.LoopResources;
import reactor.netty.tcp.TcpClient;

/**
 * How to reach a ttRPC server over a unix domain socket. Immutable: every setter returns a modified copy, and
 * {@link #connect()} opens a new {@link TtrpcConnection} each time it is subscribed.
 *
 * <pre>{@code
 * TtrpcClient.create().socket(path).runOn(loops).connect()
 *     .flatMap(connection -> connection.call("containerd.task.v2.Task", "Connect", request, ConnectResponse.parser()))
 * }</pre>
 */
public final class TtrpcClient {

    /** How long a connect may take; a dead socket answers at once, so this only bounds a stuck server. */
    public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(5);

    static final String FLUSH_CONSOLIDATION = "ttrpc-flush-consolidation";

    private static volatile PeerPolicy sameUser;

    private final Path socket;
    private final LoopResources loops;
    private final Duration connectTimeout;
    private final CallOptions defaults;
    private final List<Runnable> closeHooks;
    private final PeerPolicy peerPolicy;

    private TtrpcClient(Path socket, LoopResources loops, Duration connectTimeout, CallOptions defaults,
            List<Runnable> closeHooks, PeerPolicy peerPolicy) {
        this.socket = socket;
        this.loops = loops;
        this.connectTimeout = connectTimeout;
        this.defaults = defaults;
        this.closeHooks = closeHooks;
        this.peerPolicy = peerPolicy;
    }

    /**
     * A client with no socket yet, the default connect timeout, calls without a deadline, no hooks, talking only to
     * servers of this process's own user.
     */
    public static TtrpcClient create() {
        return new TtrpcClient(null, null, DEFAULT_CONNECT_TIMEOUT, CallOptions.defaults(), List.of(), null);
    }

    /** The server's socket file. */
    public TtrpcClient socket(Path socket) {
        return new TtrpcClient(Objects.requireNonNull(socket, "socket"), loops, connectTimeout, defaults, closeHooks,
                peerPolicy);
    }

    /** The event loops connections run on; owned by the caller, who disposes them. */
    public TtrpcClient runOn(LoopResources loops) {
        return new TtrpcClient(socket, Objects.requireNonNull(loops, "loops"), connectTimeout, defaults, closeHooks,
                peerPolicy);
    }

    /** The connect timeout. */
    public TtrpcClient connectTimeout(Duration connectTimeout) {
        return new TtrpcClient(socket, loops, Objects.requireNonNull(connectTimeout, "connectTimeout"), defaults,
                closeHooks, peerPolicy);
    }

    /** The options of calls that give none; by default {@link CallOptions#defaults()}, no deadline. */
    public TtrpcClient defaultCallOptions(CallOptions defaults) {
        return new TtrpcClient(socket, loops, connectTimeout, Objects.requireNonNull(defaults, "defaults"),
                closeHooks, peerPolicy);
    }

    /** Adds a hook run exactly once per connection, when it closes for whatever reason. */
    public TtrpcClient doOnClose(Runnable hook) {
        List<Runnable> hooks = new ArrayList<>(closeHooks);
        hooks.add(Objects.requireNonNull(hook, "hook"));
        return new TtrpcClient(socket, loops, connectTimeout, defaults, List.copyOf(hooks), peerPolicy);
    }

    /**
     * Which servers to talk to, judged by the credentials the kernel reports for the process that listens
     * ({@code SO_PEERCRED}); by default only processes of this process's own (effective) user, as servers admit
     * only clients of theirs.
     */
    public TtrpcClient peerPolicy(PeerPolicy peerPolicy) {
        return new TtrpcClient(socket, loops, connectTimeout, defaults, closeHooks,
                Objects.requireNonNull(peerPolicy, "peerPolicy"));
    }

    /**
     * Connects; each subscription opens a new connection. A server the peer policy refuses is disconnected before
     * anything is sent, and the connect fails with {@link TtrpcClosedException} naming its user: a socket whose
     * directory another user can write to may have been replaced by that user's server, which would then be told
     * the calls and answer them.
     */
    public Mono<TtrpcConnection> connect() {
        Objects.requireNonNull(socket, "socket must be set before connect");
        Objects.requireNonNull(loops, "loops must be set before connect");
        PeerPolicy policy;
        try {
            policy = peerPolicy != null ? peerPolicy : sameUser();
        } catch (IOException e) {
            return Mono.error(new TtrpcClosedException("failed to connect to ttrpc socket " + socket
                    + ": cannot tell this process's user: " + e.getMessage(), e));
        }
        return TcpClient.create(ConnectionProvider.newConnection())
                .runOn(loops, false)
                .remoteAddress(() -> UnixDomainSocketAddress.of(socket))
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) connectTimeout.toMillis())
                .doOnConnected(connection -> connection
                        .addHandlerFirst(FLUSH_CONSOLIDATION, flushConsolidation())
                        .addHandlerLast("ttrpc-frame-decoder", new FrameDecoder()))
                .connect()
                .onErrorMap(error -> !(error instanceof TtrpcException),
                        error -> new TtrpcClosedException("failed to connect to ttrpc socket " + socket + ": "
                                + error.getMessage(), error))
                .handle((connection, sink) -> {
                    UnixDomainPrincipal server = peerOf(connection.channel());
                    if (server == null || !policy.admits(server)) {
                        connection.dispose();
                        sink.error(new TtrpcClosedException("refused the ttrpc server on " + socket + ": its process"
                                + " runs as " + (server == null ? "a user the kernel did not tell" : "user "
                                        + server.user().getName() + ", group " + server.group().getName())
                                + ", which the peer policy does not admit"));
                        return;
                    }
                    sink.next(new TtrpcConnection(connection, socket.toString(), defaults, closeHooks));
                });
    }

    /** The default policy: this process's effective user, read once. */
    private static PeerPolicy sameUser() throws IOException {
        PeerPolicy policy = sameUser;
        if (policy == null) {
            policy = PeerPolicy.sameUser(UnixSockets.effectiveUser());
            sameUser = policy;
        }
        return policy;
    }

    /** The credentials of the process that listens on the socket, or null when the kernel does not tell. */
    private static UnixDomainPrincipal peerOf(Channel channel) {
        try {
            return channel.config().getOption(NioChannelOption.of(ExtendedSocketOptions.SO_PEERCRED));
        } catch (RuntimeException e) {
            return null;
        }
    }

    /**
     * One flush, so one {@code write(2)}, for all the frames written in one event-loop turn: the calls a batch of
     * answers sets off while it is read, and calls made from other threads, whose flushes run as one task. Without
     * it every frame paid a {@code write(2)} of its own, and with 16 or more calls in flight our client fell behind
     * containerd's Go client.
     */
    static FlushConsolidationHandler flushConsolidation() {
        return new FlushConsolidationHandler(FlushConsolidationHandler.DEFAULT_EXPLICIT_FLUSH_AFTER_FLUSHES, true);
    }
}
