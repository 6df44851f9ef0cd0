package org.shimmer.runtime.linux.shim.remote;

import com.google.protobuf.Empty;
import com.google.protobuf.InvalidProtocolBufferException;
import java.nio.file.Path;
import java.util.Optional;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.shim.TaskEvents;
import org.shimmer.runtime.linux.shim.proto.ForwardRequest;
import org.shimmer.runtime.linux.ttrpc.AddressInUseException;
import org.shimmer.runtime.linux.ttrpc.StatusCode;
import org.shimmer.runtime.linux.ttrpc.TtrpcServer;
import org.shimmer.runtime.linux.ttrpc.TtrpcServerHandle;
import org.shimmer.runtime.linux.ttrpc.TtrpcService;
import org.shimmer.runtime.linux.ttrpc.TtrpcStatusException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Mono;

/**
 * The ttRPC server shims forward their events to ({@code TTRPC_ADDRESS}): containerd's
 * {@code Events/Forward}, feeding an {@link EventExchange}.
 *
 * <p>Its socket has a fixed place under the state root, {@code .shimmer/events.sock}, because a running shim keeps
 * the address it was started with: a runtime that restarts binds the same path again and the shims' events flow
 * to it (a shim redials once when its connection closed).
 */
final class ShimEventsServer {

    static final String SERVICE = "containerd.services.events.ttrpc.v1.Events";

    private static final Logger log = LoggerFactory.getLogger(ShimEventsServer.class);

    private ShimEventsServer() {}

    /** The socket path for a state root. */
    static Path socket(Path stateRoot) {
        return stateRoot.resolve(".shimmer").resolve("events.sock");
    }

    /**
     * The socket shims of this state root should forward to: ours, bound on first use, or — when another process
     * (another host, a CLI) already serves it — that one, whose owner then gets the events.
     */
    static Mono<Path> address(Path stateRoot, RuntimeResources resources, RemoteShimRegistry registry,
            EventExchange exchange) {
        return forStateRoot(stateRoot, resources, registry, exchange)
                .map(TtrpcServerHandle::socket)
                .onErrorResume(ShimEventsServer::servedElsewhere, error -> {
                    log.info("shim events for {} are served by another process: {}", stateRoot, error.getMessage());
                    return Mono.just(socket(stateRoot));
                });
    }

    static boolean servedElsewhere(Throwable error) {
        return error.getCause() instanceof AddressInUseException;
    }

    /** The running server for a state root, bound on first use, stopped with {@code registry}. */
    static Mono<TtrpcServerHandle> forStateRoot(Path stateRoot, RuntimeResources resources,
            RemoteShimRegistry registry, EventExchange exchange) {
        InitExits initExits = InitExits.of(exchange);
        return registry.eventServer(socket(stateRoot), path -> TtrpcServer.create()
                .socket(path)
                .runOn(resources.loops())
                .blockingOn(resources.io())
                .service(TtrpcService.named(SERVICE).method("Forward", ForwardRequest.parser(),
                        (call, request) -> forward(exchange, initExits, request)))
                .bind());
    }

    private static Mono<Empty> forward(EventExchange exchange, InitExits initExits, ForwardRequest request) {
        var envelope = request.getEnvelope();
        Optional<TaskEvent> event;
        try {
            event = TaskEvents.decode(envelope.getEvent());
        } catch (InvalidProtocolBufferException e) {
            return Mono.error(new TtrpcStatusException(StatusCode.INVALID_ARGUMENT,
                    "undecodable " + envelope.getEvent().getTypeUrl() + ": " + e.getMessage()));
        }
        if (event.isEmpty()) {
            log.debug("ignoring shim event {} of type {}", envelope.getTopic(), envelope.getEvent().getTypeUrl());
            return Mono.just(Empty.getDefaultInstance());
        }
        // Decided as it goes in, not when a subscriber gets to it: see InitExits.
        if (event.get() instanceof TaskEvent.TaskCreate create) {
            initExits.created(exchange, envelope.getNamespace(), create.containerId(),
                    TaskEvents.instant(envelope.getTimestamp()));
        }
        if (event.get() instanceof TaskEvent.TaskExit exit
                && !initExits.forwarding(exchange, envelope.getNamespace(), exit)) {
            log.info("not forwarding the exit of init {} of {}/{} from its shim: the cleanup after the dead shim"
                    + " published it already", exit.pid(), envelope.getNamespace(), exit.containerId());
            return Mono.just(Empty.getDefaultInstance());
        }
        return exchange.forward(new Envelope(TaskEvents.instant(envelope.getTimestamp()), envelope.getNamespace(),
                        envelope.getTopic(), event.get()))
                .onErrorMap(error -> new TtrpcStatusException(StatusCode.INVALID_ARGUMENT, error.getMessage()))
                .thenReturn(Empty.getDefaultInstance());
    }
}
