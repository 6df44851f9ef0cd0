package org.shimmer.runtime.linux.shim.remote;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import reactor.core.publisher.Mono;

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
    private final Map<DeadShim, Mono<Void>> deathCleanups = new ConcurrentHashMap<>();

    /**
     * One shim of one bundle: by its pid when a client was attached to it, else (pid 0: connect() found it dead, or a
     * start could not reach it) by the {@link ShimRecord#stamp} of its record.
     */
    private record DeadShim(Path bundle, int pid, Object record) {}

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

    /**
     * The cleanup after the death of shim {@code pid} of {@code bundle} ({@code record}: its record's stamp when the
     * pid is 0), run once and shared by every client of this runtime that saw it die (containerd runs it once per
     * shim too; two runs would kill nothing more but publish every exit twice, and the second client would take the
     * vanished socket for a normal shutdown). Keyed by pid alone, every shim connect() found dead was shim 0 of its
     * bundle: the next one got the first one's result, and its record and socket were left.
     */
    Mono<Void> deathCleanup(Path bundle, int pid, Object record, Supplier<Mono<Void>> cleanup) {
        // A shim found dead with no record to name it shares its cleanup with nobody, and nobody asks for it again.
        boolean unnamed = pid == 0 && record == null;
        DeadShim key = new DeadShim(bundle, pid, pid != 0 ? null : unnamed ? new Object() : record);
        return deathCleanups.computeIfAbsent(key, dead -> {
            AtomicReference<Mono<Void>> cached = new AtomicReference<>();
            // Done, it stays only as done: the cleanup's chain held the session and its client for good. Failed,
            // it goes, so that the next client to find the shim dead tries again.
            cached.set(cleanup.get()
                    .doOnSuccess(done -> {
                        if (unnamed) {
                            deathCleanups.remove(key, cached.get());
                        } else {
                            deathCleanups.replace(key, cached.get(), Mono.empty());
                        }
                    })
                    .doOnError(failed -> deathCleanups.remove(key, cached.get()))
                    .cache());
            return cached.get();
        });
    }

    /** Whether a client of this runtime already found shim {@code pid} of {@code bundle} dead. */
    boolean diedHere(Path bundle, int pid) {
        return deathCleanups.containsKey(new DeadShim(bundle, pid, null));
    }
}
