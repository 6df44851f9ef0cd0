package org.shimmer.runtime.linux.ttrpc;

import io.netty.channel.ChannelOption;
import io.netty.handler.flush.FlushConsolidationHandler;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
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

    private final Path socket;
    private final LoopResources loops;
    private final Duration connectTimeout;
    private final CallOptions defaults;
    private final List<Runnable> closeHooks;

    private TtrpcClient(
            Path socket, LoopResources loops, Duration connectTimeout, CallOptions defaults, List<Runnable> closeHooks) {
        this.socket = socket;
        this.loops = loops;
        this.connectTimeout = connectTimeout;
        this.defaults = defaults;
        this.closeHooks = closeHooks;
    }

    /** A client with no socket yet, the default connect timeout, calls without a deadline and no hooks. */
    public static TtrpcClient create() {
        return new TtrpcClient(null, null, DEFAULT_CONNECT_TIMEOUT, CallOptions.defaults(), List.of());
    }

    /** The server's socket file. */
    public TtrpcClient socket(Path socket) {
        return new TtrpcClient(Objects.requireNonNull(socket, "socket"), loops, connectTimeout, defaults, closeHooks);
    }

    /** The event loops connections run on; owned by the caller, who disposes them. */
    public TtrpcClient runOn(LoopResources loops) {
        return new TtrpcClient(socket, Objects.requireNonNull(loops, "loops"), connectTimeout, defaults, closeHooks);
    }

    /** The connect timeout. */
    public TtrpcClient connectTimeout(Duration connectTimeout) {
        return new TtrpcClient(socket, loops, Objects.requireNonNull(connectTimeout, "connectTimeout"), defaults,
                closeHooks);
    }

    /** The options of calls that give none; by default {@link CallOptions#defaults()}, no deadline. */
    public TtrpcClient defaultCallOptions(CallOptions defaults) {
        return new TtrpcClient(socket, loops, connectTimeout, Objects.requireNonNull(defaults, "defaults"),
                closeHooks);
    }

    /** Adds a hook run exactly once per connection, when it closes for whatever reason. */
    public TtrpcClient doOnClose(Runnable hook) {
        List<Runnable> hooks = new ArrayList<>(closeHooks);
        hooks.add(Objects.requireNonNull(hook, "hook"));
        return new TtrpcClient(socket, loops, connectTimeout, defaults, List.copyOf(hooks));
    }

    /** Connects; each subscription opens a new connection. */
    public Mono<TtrpcConnection> connect() {
        Objects.requireNonNull(socket, "socket must be set before connect");
        Objects.requireNonNull(loops, "loops must be set before connect");
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
                .map(connection -> new TtrpcConnection(connection, socket.toString(), defaults, closeHooks));
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
