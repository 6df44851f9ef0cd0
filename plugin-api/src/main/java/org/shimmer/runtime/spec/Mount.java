package org.shimmer.runtime.spec;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.shimmer.runtime.InvalidSpecException;

/** A mount in the container: {@code destination} is an absolute path inside it. */
public record Mount(String destination, String type, String source, List<String> options) {

    public Mount {
        Checks.absolutePath("mounts.destination", destination);
        // Over the container's root runc hides everything the process needs, /proc included: the create failed far
        // from the cause ("error closing exec fds: open /proc/self/fd"). Docker refuses it too.
        if (Path.of(destination).normalize().getNameCount() == 0) {
            throw InvalidSpecException.ofField("mounts.destination",
                    "the container's root " + Checks.printable(destination) + " cannot be a mount's destination");
        }
        // runc would take a mount of neither as a bind of nothing and fail at create.
        if (type == null && source == null) {
            throw InvalidSpecException.ofField("mounts.type",
                    "neither a type nor a source for " + Checks.printable(destination));
        }
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
        return new Mount(destination, "tmpfs", "tmpfs", Arrays.asList(Checks.required("mounts.options", options)));
    }
}
