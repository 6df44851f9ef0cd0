package org.shimmer.runtime.shim;

import java.util.List;
import java.util.Objects;

/**
 * A filesystem the shim mounts onto the bundle's {@code rootfs} before creating the container, e.g. a read-only
 * bind of an image directory.
 *
 * @param type the mount type ({@code bind}, {@code overlay}, …)
 * @param source what is mounted
 * @param options mount options ({@code rbind}, {@code ro}, …)
 */
public record Mount(String type, String source, List<String> options) {

    public Mount {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(source, "source");
        options = List.copyOf(options);
    }

    /** A read-only recursive bind mount of {@code directory}. */
    public static Mount readOnlyBind(java.nio.file.Path directory) {
        return new Mount("bind", directory.toString(), List.of("rbind", "ro"));
    }
}
