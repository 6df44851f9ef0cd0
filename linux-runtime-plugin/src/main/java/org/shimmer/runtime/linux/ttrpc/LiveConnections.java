package org.shimmer.runtime.linux.ttrpc;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.netty.Connection;

/**
 * The connections a server is serving. Once closed it admits none: a connection the listening socket accepted while
 * the server was stopping, or while a cancelled bind was undone, is closed instead of served (a snapshot of the set
 * taken as the listener closed missed those, and they went on being answered).
 */
final class LiveConnections {

    private final Set<Connection> connections = new HashSet<>();
    private boolean closed;

    /** Adds {@code connection}; false, and nothing added, once {@link #close} has begun. */
    synchronized boolean admit(Connection connection) {
        if (closed) {
            return false;
        }
        connections.add(connection);
        return true;
    }

    synchronized void remove(Connection connection) {
        connections.remove(connection);
    }

    synchronized int size() {
        return connections.size();
    }

    /** Refuses every later connection and closes those admitted; completes when each has closed. */
    Mono<Void> close() {
        List<Connection> admitted;
        synchronized (this) {
            closed = true;
            admitted = List.copyOf(connections);
        }
        return Flux.fromIterable(admitted)
                .flatMap(connection -> {
                    connection.dispose();
                    return connection.onDispose();
                })
                .then();
    }
}
