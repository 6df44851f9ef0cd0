package org.shimmer.runtime.linux.shim.remote;

import org.shimmer.runtime.linux.shim.Operations;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;

/**
 * Runs calls one after the other, each once the one before it ended either way. A call runs to its end whatever
 * its caller does ({@link Operations#runToEnd}): a caller that left while it waited its turn must not let the
 * next one overtake the call still running before it.
 */
final class InOrder {

    private Mono<Void> last = Mono.empty();

    /** {@code work}, once every call given before it has ended. */
    Mono<Void> next(Mono<Void> work) {
        return Mono.defer(() -> {
            Sinks.Empty<Void> ended = Sinks.empty();
            Mono<Void> before;
            synchronized (this) {
                before = last;
                last = ended.asMono();
            }
            return Operations.runToEnd(before.then(work).doFinally(signal -> ended.tryEmitEmpty()));
        });
    }
}
