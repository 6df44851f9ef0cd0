package org.shimmer.runtime.linux.ttrpc;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Per-call settings: the client-side timeout and the metadata sent with the request. Immutable.
 *
 * @param timeout how long the call may wait for its answer before it fails and frees its stream
 * @param metadata request metadata; keys are sent lower-case, as servers look them up lower-cased
 */
public record CallOptions(Duration timeout, Map<String, String> metadata) {

    /** containerd's metadata key for the namespace of a call. */
    public static final String NAMESPACE_KEY = "containerd-namespace-ttrpc";

    /** The timeout when none is given. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(10);

    public CallOptions {
        Objects.requireNonNull(timeout, "timeout");
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive, was " + timeout);
        }
        Map<String, String> lowerCased = new LinkedHashMap<>();
        Objects.requireNonNull(metadata, "metadata")
                .forEach((key, value) -> lowerCased.put(key.toLowerCase(Locale.ROOT), value));
        metadata = Map.copyOf(lowerCased);
    }

    /** The default timeout and no metadata. */
    public static CallOptions defaults() {
        return new CallOptions(DEFAULT_TIMEOUT, Map.of());
    }

    /** A copy with another timeout. */
    public CallOptions withTimeout(Duration timeout) {
        return new CallOptions(timeout, metadata);
    }

    /** A copy with one more metadata entry (replacing one of the same key). */
    public CallOptions withMetadata(String key, String value) {
        Map<String, String> copy = new LinkedHashMap<>(metadata);
        copy.put(key.toLowerCase(Locale.ROOT), value);
        return new CallOptions(timeout, copy);
    }

    /** A copy carrying containerd's namespace key. */
    public CallOptions withNamespace(String namespace) {
        return withMetadata(NAMESPACE_KEY, namespace);
    }
}
