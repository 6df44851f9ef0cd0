package org.shimmer.examples.host;

import java.nio.file.Path;
import java.time.Duration;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.spec.Spec;
import reactor.core.publisher.Mono;

/**
 * A host's whole life in one {@code main}, run as its own JVM by {@link PromptExitIntegrationTests}: load the real
 * zip, run one container through the local shim and one through a remote shim, stop and unload the plugins, print
 * {@link #MARKER} and return. Whatever the plugin left running decides how long the JVM outlives the marker.
 */
public final class StopThenReturnHost {

    /** Printed as the last thing {@code main} does. */
    public static final String MARKER = "main returns now";

    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    private StopThenReturnHost() {}

    /** {@code PLUGINS_DIR WORK_DIR}. */
    public static void main(String[] args) throws Exception {
        Path pluginsDir = Path.of(args[0]);
        Path work = Path.of(args[1]);
        Path image = BusyboxRootfs.write(work.resolve("image"));
        RuntimeConfig config = new RuntimeConfig(work.resolve("state"), work.resolve("work"));
        RuncOptions runc = RuncOptions.defaults().withRuntimeRoot(work.resolve("runc").toString());
        try (PluginHost host = PluginHost.start(pluginsDir)) {
            RuntimePlugin runtime = host.runtime().withConfig(config);
            run(runtime, "local", ShimOpt.local(), image, runc);
            run(runtime, "remote", ShimOpt.remote(Path.of("containerd-shim-runc-v2"),
                    work.resolve("daemon").toString(), null, false, null), image, runc);
        }
        System.out.println(MARKER);
        System.out.flush();
    }

    private static void run(RuntimePlugin runtime, String id, ShimOpt opt, Path image, RuncOptions runc) {
        RunRequest request = RunRequest.of("exit", id, Spec.builder().args("/bin/echo", id).build(), image)
                .withShim(opt).withRuncOptions(runc);
        ExitStatus exit = Mono.usingWhen(runtime.run(request), Container::exit, Container::release).block(TIMEOUT);
        if (exit.status() != 0) {
            throw new IllegalStateException(id + " exited with " + exit.status());
        }
    }
}
