package org.shimmer.runtime.linux.bundle;

import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import reactor.core.publisher.Mono;

/** Makes shim clients for bundles; the bundle layer only passes the request on. */
@FunctionalInterface
public interface ShimFactory {

    /** A factory for stores that run no containers. */
    ShimFactory NONE = (bundle, opt, options) ->
            Mono.error(new UnsupportedOperationException("this bundle store runs no shims"));

    Mono<ShimClient> newShimClient(Bundle bundle, ShimOpt opt, RuncOptions options);
}
