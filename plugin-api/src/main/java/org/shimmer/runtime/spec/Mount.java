package org.shimmer.runtime.spec;

import java.util.List;

/** A mount in the container: {@code destination} is an absolute path inside it. */
public record Mount(String destination, String type, String source, List<String> options) {

    public Mount {
        Checks.absolutePath("mounts.destination", destination);
        if (type != null) {
            Checks.noNul("mounts.type", type);
        }
        if (source != null) {
            Checks.noNul("mounts.source", source);
        }
        options = Checks.noNulEach("mounts.options", options == null ? List.of() : options);
    }

    /** Bind-mounts host path {@code source} at {@code destination}, read-only when asked. */
    public static Mount bind(String source, String destination, boolean readonly) {
        Checks.absolutePath("mounts.source", source);
        return new Mount(destination, "bind", source,
                readonly ? List.of("rbind", "ro", "nosuid", "nodev") : List.of("rbind", "rw", "nosuid", "nodev"));
    }

    /** A tmpfs at {@code destination} with {@code options} (e.g. {@code size=64m}). */
    public static Mount tmpfs(String destination, String... options) {
        return new Mount(destination, "tmpfs", "tmpfs", List.of(options));
    }
}
