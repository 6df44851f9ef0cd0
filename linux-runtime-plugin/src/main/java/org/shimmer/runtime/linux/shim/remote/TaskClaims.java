package org.shimmer.runtime.linux.shim.remote;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Which client of this runtime may create a bundle's task. Several clients can reach one shim (a {@code remote()}
 * client, and {@code connect()}ed ones); the shim's own Create does not check for an existing task, and its
 * failure path unmounts the rootfs of the task already running (issue 9: a second create killed the container).
 * A client claims the bundle for the whole of its create, and keeps the claim while its task lives and it stays
 * attached. It also knows every attached client of a bundle, so that a forced delete can detach them first.
 */
final class TaskClaims {

    private final Map<Path, RemoteShimClient> owners = new ConcurrentHashMap<>();
    private final Map<Path, Set<RemoteShimClient>> attached = new ConcurrentHashMap<>();

    /** Whether {@code client} now holds the claim on {@code bundle}; false when another client does. */
    boolean claim(Path bundle, RemoteShimClient client) {
        return owners.putIfAbsent(bundle, client) == null;
    }

    /** Gives up {@code client}'s claim on {@code bundle}, if it holds it. */
    void release(Path bundle, RemoteShimClient client) {
        owners.remove(bundle, client);
    }

    /** The bundle's task is gone (deleted, or its shim died), whichever client made it: anyone may create again. */
    void taskGone(Path bundle) {
        owners.remove(bundle);
    }

    /** {@code client} is connected to the shim of {@code bundle}. */
    void attached(Path bundle, RemoteShimClient client) {
        attached.computeIfAbsent(bundle, path -> ConcurrentHashMap.newKeySet()).add(client);
    }

    /** {@code client} no longer answers for the shim of {@code bundle}. */
    void detached(Path bundle, RemoteShimClient client) {
        attached.computeIfPresent(bundle, (path, clients) -> {
            clients.remove(client);
            return clients.isEmpty() ? null : clients;
        });
    }

    /** The clients now attached to the shim of {@code bundle}. */
    List<RemoteShimClient> attachedTo(Path bundle) {
        Set<RemoteShimClient> clients = attached.get(bundle);
        return clients == null ? List.of() : List.copyOf(clients);
    }
}
