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
            // No filesystem has an empty or spaced name: the kernel refused it with ENODEV, at create.
            if (type.isEmpty() || type.chars().anyMatch(Character::isWhitespace)) {
                throw InvalidSpecException.ofField("mounts.type", "not a filesystem type: " + Checks.printable(type)
                        + " at " + Checks.printable(destination) + " (leave it null for a bind mount)");
            }
        }
        if (source != null) {
            Checks.noNul("mounts.source", source);
        }
        options = Checks.noNulEach("mounts.options", options == null ? List.of() : options);
        // runc takes a mount as a bind by its options, or by type "bind": without either, a typeless mount was
        // mounted with no filesystem type and failed at create with ENODEV.
        if (type == null && !options.contains("bind") && !options.contains("rbind")) {
            throw InvalidSpecException.ofField("mounts.type", "no type and no bind or rbind option for "
                    + Checks.printable(destination) + ": give a filesystem type, or bind the source");
        }
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
