package org.shimmer.runtime.linux.cleanup;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TerminalSize;
import reactor.core.publisher.Flux;

/**
 * A host that {@link HostCrashTest} kills with SIGKILL: creates a bundle, starts a shim, creates and starts a task
 * on a bind-mounted image, printing a marker after each step, then waits to be killed.
 *
 * <p>Arguments: {@code local|remote[-terminal|-paused] stateRoot workRoot runcRoot specFile image namespace id
 * daemonAddress}; {@code -terminal} puts init on a terminal (the spec must ask for one); {@code -paused} writes
 * init's stdout and stderr to {@link #output} and pauses the task once started (marker "paused").
 */
public final class CrashingHost {

    private CrashingHost() {}

    /**
     * Starts this host in a child JVM ({@code kind} local or remote) on the directories under {@code temp}
     * ({@code state}, {@code work}, {@code runc}), its stderr into {@code log}: a short-lived JVM, so the quickest
     * start, not the quickest code.
     */
    static Process start(Path temp, String kind, Path spec, Path image, String namespace, String id, String daemon,
            Path log) throws IOException {
        return new ProcessBuilder(ProcessHandle.current().info().command().orElseThrow(),
                "--enable-native-access=ALL-UNNAMED", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                "-cp", System.getProperty("java.class.path"),
                CrashingHost.class.getName(), kind, temp.resolve("state").toString(), temp.resolve("work").toString(),
                temp.resolve("runc").toString(), spec.toString(), image.toString(), namespace, id, daemon)
                .redirectError(log.toFile()).start();
    }

    /** Where a {@code -paused} host's init writes its stdout and stderr: beside the state and work roots. */
    static Path output(Path temp, String id) {
        return temp.resolve("output-" + id);
    }

    public static void main(String[] args) throws Exception {
        boolean terminal = args[0].endsWith("-terminal");
        boolean paused = args[0].endsWith("-paused");
        boolean local = args[0].startsWith("local");
        RuntimeResources resources = new RuntimeResources("crashing-host-");
        LinuxRuntime runtime = new LinuxRuntime(new RuntimeConfig(Path.of(args[1]), Path.of(args[2])), resources);
        RuncOptions runc = RuncOptions.defaults().withRuntimeRoot(args[3]);
        byte[] spec = Files.readAllBytes(Path.of(args[4]));
        Path image = Path.of(args[5]);
        marker("runtime");
        Bundle bundle = runtime.create(args[6], args[7], spec).block();
        marker("bundle");
        ShimOpt opt = local ? ShimOpt.local()
                : ShimOpt.remote(Path.of("containerd-shim-runc-v2"), args[8], null, false, null);
        ShimClient shim = bundle.newShimClient(opt, runc).block();
        marker("shim");
        Path output = output(Path.of(args[1]).getParent(), args[7]);
        Stdio stdio = terminal ? Stdio.terminal(Flux.never(), new TerminalSize(80, 24))
                : paused ? Stdio.files(output, output) : Stdio.none();
        shim.create(new CreateOptions(List.of(Mount.readOnlyBind(image)), stdio)).block();
        marker("created");
        shim.start().block();
        marker("started");
        if (paused) {
            shim.pause().block();
            marker("paused");
        }
        Thread.sleep(Long.MAX_VALUE);
    }

    private static void marker(String name) {
        System.out.println(name);
        System.out.flush();
    }
}
