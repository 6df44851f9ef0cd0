package org.shimmer.runtime.linux.cleanup;

import java.io.IOException;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.shim.ShimOpt;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;

/** Writes a bundle's {@link LaunchRecord} before its shim is started or taken over. */
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
}
