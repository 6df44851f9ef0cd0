package org.shimmer.runtime.linux.ttrpc;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;
import reactor.netty.DisposableServer;

/**
 * A bound {@link TtrpcServer}. Shutting it down closes its live connections and removes its socket file: the one it
 * bound, never a file another server has since bound at the same path. Except for a server that bound its address
 * directly (a directory with no room for the private name, {@link UnixSockets#bindName}): Netty removes that path
 * as it closes, whatever file is there by then.
 */
public final class TtrpcServerHandle implements Disposable {

    private final DisposableServer server;
    private final Path socket;
    private final Object socketIdentity;
    private final LiveConnections live;
    private final Scheduler blocking;
    private final AtomicBoolean disposing = new AtomicBoolean();
    private final Sinks.Empty<Void> disposed = Sinks.empty();
    private final AtomicReference<Throwable> removal = new AtomicReference<>();
    private final boolean direct;

    TtrpcServerHandle(DisposableServer server, Path socket, Object socketIdentity, boolean direct,
            LiveConnections live, Scheduler blocking) {
        this.server = server;
        this.socket = socket;
        this.socketIdentity = socketIdentity;
        this.direct = direct;
        this.live = live;
        this.blocking = blocking;
    }

    /** The socket file served on. */
    public Path socket() {
        return socket;
    }

    /** Connections being served now. */
    public int connections() {
        return live.size();
    }

    /**
     * Removes the socket file if it is still the one bound, then stops accepting and closes every live connection
     * (none is admitted from the start); a server bound directly at its address has it removed by Netty as it
     * closes. Completes when all of that is done; later calls complete with the first.
     */
    public Mono<Void> disposeLater() {
        return Mono.defer(() -> {
            if (disposing.compareAndSet(false, true)) {
                Mono<Void> closingConnections = live.close();
                removeSocket()
                        .then(Mono.fromRunnable(server::dispose))
                        .then(closingConnections)
                        .then(server.onDispose())
                        .then(Mono.defer(() -> removal.get() == null ? Mono.<Void>empty() : Mono.error(removal.get())))
                        .subscribe(done -> {}, disposed::tryEmitError, disposed::tryEmitEmpty);
            }
            return disposed.asMono();
        });
    }

    /**
     * The socket file goes before the listener closes, while the listener holds its inode: removed after the close,
     * the inode could already be free and reused by another server's socket at this address, which the identity
     * check would take for this one's. Except where the server bound its address directly: there Netty removes it
     * at the close, and removing it first would let a new server bind the address before that close removed its
     * socket. A failure is kept for the end; the server stops all the same.
     */
    private Mono<Void> removeSocket() {
        if (direct) {
            return Mono.empty();
        }
        return Mono.fromCallable(() -> UnixSockets.removeIfSame(socket, socketIdentity))
                .subscribeOn(blocking)
                // The plugin stopping: its io scheduler refuses work. Done here, unless here is an event loop:
                // then the file stays, and the next bind finds it stale.
                .onErrorResume(RejectedExecutionException.class, stopped -> Schedulers.isInNonBlockingThread()
                        ? Mono.error(stopped)
                        : Mono.fromCallable(() -> UnixSockets.removeIfSame(socket, socketIdentity)))
                .onErrorResume(error -> {
                    removal.set(error);
                    return Mono.empty();
                })
                .then();
    }

    /** {@link #disposeLater()} and wait for it. Never call it on an event loop. */
    public void disposeNow(Duration timeout) {
        disposeLater().block(timeout);
    }

    /** Starts {@link #disposeLater()} without waiting. */
    @Override
    public void dispose() {
        disposeLater().subscribe(done -> {}, error -> {});
    }

    @Override
    public boolean isDisposed() {
        return disposing.get();
    }
}
