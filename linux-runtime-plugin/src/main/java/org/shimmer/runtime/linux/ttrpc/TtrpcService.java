package org.shimmer.runtime.linux.ttrpc;

import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.BiFunction;
import reactor.core.publisher.Mono;

/**
 * A named service and its unary methods, for a {@link TtrpcServer}. Immutable; {@link #method} returns a copy
 * with one more method.
 *
 * <p>Handlers run on the connection's event loop and must not block: return a {@code Mono} that does blocking
 * work on another scheduler. Fail with {@link TtrpcStatusException} to choose the status code; any other error is
 * sent as {@link StatusCode#UNKNOWN}. An empty {@code Mono} answers with an empty message. A handler still running
 * at the client's deadline ({@link ServerCall#timeoutNanos()}) or when its peer goes is cancelled: release on
 * cancel too.
 */
public final class TtrpcService {

    private final String name;
    private final Map<String, Method<?>> methods;

    private TtrpcService(String name, Map<String, Method<?>> methods) {
        this.name = name;
        this.methods = methods;
    }

    /** A service with no methods yet, e.g. {@code containerd.services.events.ttrpc.v1.Events}. */
    public static TtrpcService named(String name) {
        return new TtrpcService(Objects.requireNonNull(name, "name"), Map.of());
    }

    /** A copy with one more unary method. */
    public <Q extends MessageLite> TtrpcService method(
            String method, Parser<Q> requestParser, BiFunction<ServerCall, Q, Mono<? extends MessageLite>> handler) {
        Map<String, Method<?>> copy = new LinkedHashMap<>(methods);
        copy.put(Objects.requireNonNull(method, "method"),
                new Method<>(Objects.requireNonNull(requestParser, "requestParser"),
                        Objects.requireNonNull(handler, "handler")));
        return new TtrpcService(name, Map.copyOf(copy));
    }

    /** The full service name clients send. */
    public String name() {
        return name;
    }

    Method<?> find(String method) {
        return methods.get(method);
    }

    /** One method: how to decode its request and what answers it. */
    record Method<Q extends MessageLite>(
            Parser<Q> requestParser, BiFunction<ServerCall, Q, Mono<? extends MessageLite>> handler) {}
}
