package org.shimmer.runtime;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * What is still alive for one bundle, as {@link RuntimePlugin#inspect} found it on the machine (not what this
 * runtime remembers): its shim, its runc container, the processes that belong to it and the mounts under it.
 *
 * @param namespace the bundle's namespace
 * @param id the bundle's id
 * @param present whether its bundle or work directory exists at all
 * @param complete whether it is a complete bundle, one {@link RuntimePlugin#load} accepts
 * @param shim its shim, if one was ever started for it
 * @param container its runc container, if runc has state for it
 * @param processes pids of live processes that belong to the bundle: shim processes, runc commands running on it,
 *     and a container's init before it runs the user's program
 * @param mounts mount points at or under its bundle or work directory, deepest last
 */
public record BundleInspection(String namespace, String id, boolean present, boolean complete, Optional<Shim> shim,
        Optional<Container> container, List<Integer> processes, List<Path> mounts) {

    public BundleInspection {
        Objects.requireNonNull(namespace, "namespace");
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(shim, "shim");
        Objects.requireNonNull(container, "container");
        processes = List.copyOf(processes);
        mounts = List.copyOf(mounts);
    }

    /** Which kind of shim runs (or ran) the bundle's container. */
    public enum ShimKind {
        /** {@code ShimOpt.local}: the shim is the host JVM itself. */
        LOCAL,
        /** {@code ShimOpt.remote}: a {@code containerd-shim-runc-v2} process. */
        REMOTE
    }

    /**
     * The bundle's shim.
     *
     * @param kind local or remote
     * @param pid the shim process (for a local shim: the JVM that runs it), or 0 when unknown
     * @param alive whether that process runs and still serves the bundle: a remote shim daemon that is not
     *     shutting down, or a live JVM holding the local container
     */
    public record Shim(ShimKind kind, int pid, boolean alive) {
        public Shim {
            Objects.requireNonNull(kind, "kind");
        }
    }

    /**
     * The bundle's container as {@code runc state} reports it.
     *
     * @param status runc's status: {@code created}, {@code running}, {@code pausing}, {@code paused} or
     *     {@code stopped}; {@code unknown} when runc has a state directory but cannot load it (a create that
     *     crashed midway)
     * @param pid its init process, or 0
     * @param runtimeRoot the runc root it lives in (without the namespace)
     */
    public record Container(String status, int pid, Path runtimeRoot) {
        public Container {
            Objects.requireNonNull(status, "status");
            Objects.requireNonNull(runtimeRoot, "runtimeRoot");
        }

        /** Whether runc reports it as anything but stopped. */
        public boolean alive() {
            return !status.equals("stopped");
        }
    }

    /**
     * Whether something still lives for the bundle: a live shim, a runc container in any state, or a process that
     * belongs to it. {@link Bundle#delete()} refuses such a bundle; {@link RuntimePlugin#forceDelete} stops it.
     */
    public boolean inUse() {
        return shim.map(Shim::alive).orElse(false) || container.isPresent() || !processes.isEmpty();
    }

    /**
     * One line for people: {@code running}, {@code running (no shim)}, {@code stopped}, {@code no task} or
     * {@code -} (nothing runs).
     */
    public String describe() {
        boolean shimAlive = shim.map(Shim::alive).orElse(false);
        if (container.isPresent()) {
            return container.get().status() + (shimAlive ? "" : " (no shim)");
        }
        if (shimAlive) {
            return "no task";
        }
        return processes.isEmpty() ? "-" : "starting (no shim)";
    }
}
