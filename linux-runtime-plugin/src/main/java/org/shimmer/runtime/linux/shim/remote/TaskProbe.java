package org.shimmer.runtime.linux.shim.remote;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.shim.proto.StateRequest;
import org.shimmer.runtime.linux.shim.proto.StateResponse;
import org.shimmer.runtime.linux.ttrpc.CallOptions;
import org.shimmer.runtime.linux.ttrpc.TtrpcClient;
import org.shimmer.runtime.linux.ttrpc.TtrpcConnection;
import org.shimmer.runtime.shim.ShimException;
import org.shimmer.runtime.shim.TaskState;
import reactor.core.publisher.Mono;

/**
 * Asks a bundle's remote shim for its init task's state over a connection of its own, closed after the answer.
 * Read-only by construction: it reads {@code shim.json} and dials, never writes, removes, adopts or binds anything,
 * because a listing that reattached cleaned up the bundle of a dead shim ({@code ps} changed what it showed).
 */
public final class TaskProbe {

    private final RuntimeResources resources;

    public TaskProbe(RuntimeResources resources) {
        this.resources = resources;
    }

    /**
     * The init task's state, or empty when no shim is recorded in {@code workDir}, none answers on its socket, or it
     * has no task.
     */
    public Mono<TaskState> state(String namespace, String id, Path workDir) {
        String name = namespace + "/" + id;
        return Mono.fromCallable(() -> recordedSocket(workDir))
                .subscribeOn(resources.io())
                .flatMap(socket -> socket.map(path -> ask(namespace, id, path)).orElseGet(Mono::empty))
                .onErrorMap(IOException.class, unreadable -> new ShimException(ErrorCode.INTERNAL,
                        "cannot read the shim record of " + name + ": " + unreadable.getMessage(), unreadable));
    }

    private static Optional<Path> recordedSocket(Path workDir) throws IOException {
        return ShimRecord.read(workDir).map(record -> Path.of(record.socket()));
    }

    private Mono<TaskState> ask(String namespace, String id, Path socket) {
        // A socket nobody listens on (the shim was killed) or that is gone: no shim answers.
        Mono<TtrpcConnection> dialed = TtrpcClient.create().socket(socket).runOn(resources.loops())
                .connectTimeout(RemoteShims.DIAL_TIMEOUT).connect()
                // Its deadline is a timer of its event loop, which a stop may end without closing it.
                .doOnNext(connection -> RemoteShims.closeOnStop(resources, connection))
                .onErrorResume(unreachable -> Mono.empty());
        return Mono.usingWhen(dialed,
                        connection -> state(connection, namespace, id),
                        TtrpcConnection::disposeLater,
                        (connection, error) -> connection.disposeLater(),
                        TtrpcConnection::disposeLater)
                .onErrorResume(TaskProbe::unanswered, noAnswer -> Mono.empty())
                // Cut short by a plugin stop (its connection closed, its loop gone), the shim was not found absent:
                // "no shim answers" would have been a false answer, the same as for a bundle without one.
                .switchIfEmpty(Mono.defer(() -> resources.isClosed()
                        ? Mono.error(new UnavailableException("get the state of task " + namespace + "/" + id
                                + ": the runtime stopped before its shim answered"))
                        : Mono.empty()));
    }

    private static Mono<TaskState> state(TtrpcConnection connection, String namespace, String id) {
        return connection.call(ShimSession.TASK, "State", StateRequest.newBuilder().setId(id).build(),
                        StateResponse.parser(),
                        CallOptions.defaults().withNamespace(namespace).withTimeout(RemoteShims.CONNECT_TIMEOUT))
                .map(state -> TaskService.taskState(id, "", state))
                .onErrorMap(error -> ShimErrors.map("get state of", namespace + "/" + id, error));
    }

    /** No task, a shim that went away or did not answer in time: nothing to report, not a failure. */
    private static boolean unanswered(Throwable error) {
        return error instanceof ShimmerException known && (known.code() == ErrorCode.NOT_FOUND
                || known.code() == ErrorCode.UNAVAILABLE || known.code() == ErrorCode.DEADLINE_EXCEEDED);
    }
}
