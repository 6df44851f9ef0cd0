package org.shimmer.runtime.shim;

import java.util.List;
import java.util.Objects;

/**
 * How to create a bundle's init process.
 *
 * @param rootfs filesystems to mount onto the bundle's rootfs first; empty to use {@code root.path} of the spec
 * @param stdio where the init process's streams go
 */
public record CreateOptions(List<Mount> rootfs, Stdio stdio) {

    public CreateOptions {
        rootfs = List.copyOf(rootfs);
        Objects.requireNonNull(stdio, "stdio");
    }

    /** No mounts, the given stdio. */
    public static CreateOptions of(Stdio stdio) {
        return new CreateOptions(List.of(), stdio);
    }
}
