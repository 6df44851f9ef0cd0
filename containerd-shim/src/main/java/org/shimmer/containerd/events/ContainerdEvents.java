package org.shimmer.containerd.events;

import com.google.protobuf.Any;
import com.google.protobuf.Empty;
import com.google.protobuf.InvalidProtocolBufferException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Function;
import org.shimmer.runtime.events.Backlog;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.EventFilter;
import org.shimmer.runtime.events.OverflowPolicy;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.shim.TaskEvents;
import org.shimmer.runtime.linux.shim.proto.ForwardRequest;
import org.shimmer.runtime.linux.shim.proto.TaskCreate;
import org.shimmer.runtime.linux.shim.proto.TaskIO;
import org.shimmer.runtime.linux.ttrpc.CallOptions;
import org.shimmer.runtime.linux.ttrpc.TtrpcClient;
import org.shimmer.runtime.linux.ttrpc.TtrpcConnection;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;
import reactor.netty.resources.LoopResources;
import reactor.util.retry.Retry;

/**
 * Publishes the daemon's task events to containerd as its shims do: {@code Events/Forward} on the ttRPC socket
 * containerd named in {@code TTRPC_ADDRESS}, one envelope at a time in the order they happened (containerd's
 * exit before delete), each retried with a growing pause while containerd is away (a restart), then dropped with a
 * warning. The exchange's backlog holds what waits (bounded; an overflow is logged by the exchange).
 */
public final class ContainerdEvents implements Disposable {

    /** How many times one envelope is retried before it is dropped. */
    static final int RETRIES = 8;

    private static final Logger log = LoggerFactory.getLogger(ContainerdEvents.class);
    private static final String SERVICE = "containerd.services.events.ttrpc.v1.Events";
    private static final Duration FORWARD_TIMEOUT = Duration.ofSeconds(5);
    /** Room for the events of a few thousand lifecycles while containerd restarts. */
    private static final Backlog BACKLOG = Backlog.of(16_384, OverflowPolicy.DROP_OLDEST);

    private final Path socket;
    private final LoopResources loops;
    private final Function<String, Optional<TaskIO>> createIo;
    private final Disposable sending;
    /** The connection to containerd; used by the one sender at a time. */
    private volatile TtrpcConnection connection;

    /**
     * Starts forwarding the task events of {@code namespace} from {@code exchange} to {@code socket}; a
     * {@code /tasks/create} with the stdio {@code createIo} has for its task, if any.
     */
    public ContainerdEvents(EventExchange exchange, String namespace, Path socket, LoopResources loops,
            Scheduler io, Function<String, Optional<TaskIO>> createIo) {
        this.socket = socket;
        this.loops = loops;
        this.createIo = createIo;
        this.sending = exchange.subscribe(new EventFilter(namespace, "/tasks/", null), BACKLOG)
                .filter(envelope -> envelope.event() instanceof TaskEvent)
                .concatMap(envelope -> send(envelope).subscribeOn(io), 1)
                .subscribe(sent -> {}, error -> log.error("task events are no longer sent to containerd", error));
    }

    private Mono<Void> send(Envelope envelope) {
        ForwardRequest request = withCreateIo(TaskEvents.forwardRequest(envelope), envelope);
        return Mono.defer(() -> connected()
                        .flatMap(containerd -> containerd.call(SERVICE, "Forward", request, Empty.parser(),
                                CallOptions.defaults().withTimeout(FORWARD_TIMEOUT)
                                        .withNamespace(envelope.namespace())))
                        .doOnError(failed -> disconnect()))
                .retryWhen(Retry.backoff(RETRIES, Duration.ofMillis(100)).maxBackoff(Duration.ofSeconds(5)))
                .then()
                .onErrorResume(failed -> {
                    log.warn("dropped the {} event of {} for containerd at {}: {}", envelope.topic(),
                            envelope.namespace(), socket, failed.toString());
                    return Mono.empty();
                });
    }

    /** A {@code /tasks/create} with the stdio its create named, as runc's shim sends it; the rest as they are. */
    private ForwardRequest withCreateIo(ForwardRequest request, Envelope envelope) {
        if (!(envelope.event() instanceof TaskEvent.TaskCreate create)) {
            return request;
        }
        return createIo.apply(create.containerId()).map(io -> {
            Any event = request.getEnvelope().getEvent();
            TaskCreate withIo;
            try {
                withIo = TaskCreate.parseFrom(event.getValue()).toBuilder().setIo(io).build();
            } catch (InvalidProtocolBufferException e) {
                throw new IllegalStateException("a TaskCreate this daemon encoded cannot be read", e);
            }
            ForwardRequest.Builder forward = request.toBuilder();
            forward.getEnvelopeBuilder().setEvent(event.toBuilder().setValue(withIo.toByteString()));
            return forward.build();
        }).orElse(request);
    }

    private Mono<TtrpcConnection> connected() {
        TtrpcConnection current = connection;
        if (current != null && !current.isDisposed()) {
            return Mono.just(current);
        }
        return TtrpcClient.create().socket(socket).runOn(loops).connect().doOnNext(made -> connection = made);
    }

    private void disconnect() {
        TtrpcConnection current = connection;
        if (current != null) {
            current.dispose();
            connection = null;
        }
    }

    @Override
    public void dispose() {
        sending.dispose();
        disconnect();
    }

    @Override
    public boolean isDisposed() {
        return sending.isDisposed();
    }
}
