package org.shimmer.runtime.linux.cleanup;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Optional;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.shim.ShimOpt;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;

/**
 * Writes a bundle's {@link LaunchRecord} before its shim is started or taken over, and answers from it what
 * cleanup needs.
 */
public final class Launches {

    private Launches() {}

    /** Before a remote shim starts: its binary, the address hashed into its socket name, runc's root. */
    public static Mono<Void> record(Bundle bundle, ShimOpt.Remote opt, RuncOptions options, Scheduler io) {
        LaunchRecord record = new LaunchRecord(BundleInspection.ShimKind.REMOTE, options.runtimeRoot(),
                options.effectiveBinaryName(), opt.shimBinary().toString(), opt.daemonAddress(), 0, 0);
        return Mono.<Void>fromCallable(() -> {
            record.write(bundle.workDir());
            return null;
        }).subscribeOn(io);
    }

    /**
     * Before a local shim runs here: this JVM holds the container from now on. Blocking; on the io task that takes
     * the shim, without a hop of its own.
     */
    public static void recordLocal(Bundle bundle, RuncOptions options) throws IOException {
        new LaunchRecord(BundleInspection.ShimKind.LOCAL, options.runtimeRoot(), options.effectiveBinaryName(), null,
                null, SelfProcess.PID, SelfProcess.START_MILLIS).write(bundle.workDir());
    }

    /**
     * Whether runc still has the bundle's container: its state directory under the root the shim was launched with
     * (the launch record's), or under {@code options}' root when none was recorded. runc keeps that directory from
     * early in {@code runc create} until the container's delete. Blocking.
     */
    public static boolean runcHasContainer(Bundle bundle, RuncOptions options) {
        Optional<LaunchRecord> launch;
        try {
            launch = LaunchRecord.read(bundle.workDir());
        } catch (IOException unreadable) {
            // Written atomically, so only a foreign file is unreadable: the given root is tried instead.
            launch = Optional.empty();
        }
        String root = launch.map(LaunchRecord::runtimeRoot).orElseGet(options::runtimeRoot);
        return root != null && Files.isDirectory(new RuncContainer(RuncOptions.DEFAULT_BINARY_NAME, Path.of(root),
                bundle.namespace(), bundle.id()).stateDir(), LinkOption.NOFOLLOW_LINKS);
    }
}
