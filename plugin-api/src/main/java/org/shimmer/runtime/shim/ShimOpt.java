package org.shimmer.runtime.shim;

import java.nio.file.Path;
import java.util.Objects;
import java.util.function.Consumer;

/** How {@link org.shimmer.runtime.Bundle#newShimClient} gets a shim for the bundle. */
public sealed interface ShimOpt {

    /** Exit handlers run for a shim that died; this one does nothing. */
    Consumer<ShimExit> NO_EXIT_HANDLER = exit -> {};

    /**
     * Starts a new shim process for the bundle.
     *
     * @param shimBinary the shim executable, e.g. {@code containerd-shim-runc-v2} (looked up on the PATH when not
     *     absolute)
     * @param daemonAddress the "containerd address" the shim is told; the runc shim only hashes it into its socket
     *     name, so distinct values keep distinct hosts' shims apart
     * @param cgroup the cgroup to move the shim into, or {@code null}
     * @param debug whether the shim logs at debug level
     * @param exitHandler called once if the shim dies, after its cleanup
     */
    static ShimOpt remote(Path shimBinary, String daemonAddress, String cgroup, boolean debug,
            Consumer<ShimExit> exitHandler) {
        return new Remote(shimBinary, daemonAddress, cgroup, debug, exitHandler);
    }

    /** Reconnects to the shim already running for the bundle, as recorded in the bundle. */
    static ShimOpt connect() {
        return new Connect(NO_EXIT_HANDLER);
    }

    /** {@link #connect()} with an exit handler for the reconnected shim. */
    static ShimOpt connect(Consumer<ShimExit> exitHandler) {
        return new Connect(exitHandler);
    }

    /**
     * Runs the shim inside this JVM: the plugin drives runc itself and publishes the task events where remote shims'
     * go ({@link org.shimmer.runtime.RuntimeConfig#events()}, or the plugin's own exchange), so a host sees one
     * stream. The container lives as long as the JVM; a reloaded plugin finds it again.
     */
    static ShimOpt local() {
        return new Local();
    }

    /** See {@link #remote}. */
    record Remote(Path shimBinary, String daemonAddress, String cgroup, boolean debug, Consumer<ShimExit> exitHandler)
            implements ShimOpt {
        public Remote {
            Objects.requireNonNull(shimBinary, "shimBinary");
            Objects.requireNonNull(daemonAddress, "daemonAddress");
            exitHandler = exitHandler != null ? exitHandler : NO_EXIT_HANDLER;
        }
    }

    /** See {@link #connect()}. */
    record Connect(Consumer<ShimExit> exitHandler) implements ShimOpt {
        public Connect {
            exitHandler = exitHandler != null ? exitHandler : NO_EXIT_HANDLER;
        }
    }

    /** See {@link #local}. */
    record Local() implements ShimOpt {}
}
