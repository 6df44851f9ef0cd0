package org.shimmer.runtime.linux.shim.remote;

import java.io.IOException;
import java.util.Optional;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.linux.shim.ShimInvocation;
import org.shimmer.runtime.linux.sys.Procfs;

/**
 * Whether a bundle's shim process still runs, when its socket does not answer. A shim is dead only when its
 * process is gone: cleaning up after a live one would kill its container and leave the shim running (issue 9).
 */
final class ShimProcess {

    private ShimProcess() {}

    /** Whether a shim daemon of {@code bundle} runs; blocking. Unknown counts as alive. */
    static boolean alive(Bundle bundle) {
        try {
            for (int pid : Procfs.pids()) {
                if (Procfs.isLive(pid) && isDaemon(pid, bundle)) {
                    return true;
                }
            }
            return false;
        } catch (IOException unreadable) {
            return true;
        }
    }

    /** Whether live process {@code pid} is the shim daemon of {@code bundle}; blocking. */
    static boolean isDaemon(int pid, Bundle bundle) {
        try {
            return ShimInvocation.of(pid, bundle.namespace(), bundle.id(), bundle.path())
                    .equals(Optional.of(ShimInvocation.Kind.DAEMON));
        } catch (IOException | RuntimeException gone) {
            return false;
        }
    }
}
