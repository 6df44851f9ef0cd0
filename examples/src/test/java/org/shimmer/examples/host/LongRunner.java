package org.shimmer.examples.host;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import org.shimmer.runtime.spec.Spec;

/**
 * A {@code sleep 600} under containerd's shim that outlives the plugin that started it: started, reattached to and
 * stopped each through whichever plugin the host runs at the time. Nothing of a plugin is kept between calls, so a
 * reloaded plugin's class loader can go.
 */
record LongRunner(String namespace, String id, Path rootfs, Path shimDaemonRoot, RuncOptions runc) {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    /** Creates and starts it through {@code runtime}, then lets go of its shim; returns its pid. */
    int start(RuntimePlugin runtime) {
        Bundle bundle = runtime.create(namespace, id, Spec.builder().args("/bin/sleep", "600").build())
                .block(TIMEOUT);
        ShimClient shim = bundle.newShimClient(ShimOpt.remote(Path.of("containerd-shim-runc-v2"),
                shimDaemonRoot.toString(), null, false, null), runc).block(TIMEOUT);
        shim.create(new CreateOptions(List.of(Mount.readOnlyBind(rootfs)), Stdio.none())).block(TIMEOUT);
        int pid = shim.start().block(TIMEOUT);
        shim.close().block(TIMEOUT);
        return pid;
    }

    /** Its state, through a shim client of {@code runtime} that reconnects and lets go again. */
    TaskState reattach(RuntimePlugin runtime) {
        ShimClient shim = runtime.load(namespace, id).block(TIMEOUT).newShimClient(ShimOpt.connect(), runc)
                .block(TIMEOUT);
        TaskState state = shim.state().block(TIMEOUT);
        shim.close().block(TIMEOUT);
        return state;
    }

    /** Kills it, checks it died of that, and deletes it, its shim and its bundle. */
    void stop(RuntimePlugin runtime) {
        Bundle bundle = runtime.load(namespace, id).block(TIMEOUT);
        ShimClient shim = bundle.newShimClient(ShimOpt.connect(), runc).block(TIMEOUT);
        shim.kill(9, false).block(TIMEOUT);
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isEqualTo(137);
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
        bundle.delete().block(TIMEOUT);
    }
}
