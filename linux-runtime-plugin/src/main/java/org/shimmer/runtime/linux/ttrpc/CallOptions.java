package org.shimmer.runtime.linux.ttrpc;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Per-call settings: the deadline and the metadata sent with the request. Immutable.
 *
 * <p>As containerd's Go client: a call has no deadline unless its caller gives one. None is sent as
 * {@code timeout_nano = 0}, which servers read as "no deadline"; a given one is sent as {@code timeout_nano} and
 * enforced by the client as well, since containerd's servers turn it into the handler's deadline but a stuck peer
 * may never answer at all. (Wait once sent ten years to mean "none": a real deadline to such servers.)
 *
 * @param timeout how long the call may wait for its answer, if bounded
 * @param metadata request metadata; keys are sent lower-case, as servers look them up lower-cased
 */
public record CallOptions(Optional<Duration> timeout, Map<String, String> metadata) {

    /** containerd's metadata key for the namespace of a call. */
    public static final String NAMESPACE_KEY = "containerd-namespace-ttrpc";

    public CallOptions {
        Objects.requireNonNull(timeout, "timeout").ifPresent(CallOptions::requirePositive);
        Map<String, String> lowerCased = new LinkedHashMap<>();
        Objects.requireNonNull(metadata, "metadata")
                .forEach((key, value) -> lowerCased.put(key.toLowerCase(Locale.ROOT), value));
        metadata = Map.copyOf(lowerCased);
    }

    /** No deadline and no metadata. */
    public static CallOptions defaults() {
        return new CallOptions(Optional.empty(), Map.of());
    }

    /** A copy whose calls fail with {@link TtrpcTimeoutException} after {@code timeout}, which servers are sent. */
    public CallOptions withTimeout(Duration timeout) {
        return new CallOptions(Optional.of(Objects.requireNonNull(timeout, "timeout")), metadata);
    }

    /** A copy with no deadline. */
    public CallOptions withoutTimeout() {
        return new CallOptions(Optional.empty(), metadata);
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

    /** What {@code timeout_nano} carries: the timeout in nanoseconds, 0 for none. */
    long timeoutNanos() {
        return timeout.map(Duration::toNanos).orElse(0L);
    }

    private static void requirePositive(Duration timeout) {
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive, was " + timeout);
        }
    }
}
