package org.shimmer.runtime.linux.cleanup;

import java.time.Instant;
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
        return write(bundle, new LaunchRecord(BundleInspection.ShimKind.REMOTE, options.runtimeRoot(),
                options.effectiveBinaryName(), opt.shimBinary().toString(), opt.daemonAddress(), 0, 0), io);
    }

    /** Before a local shim runs here: this JVM holds the container from now on. */
    public static Mono<Void> record(Bundle bundle, ShimOpt.Local opt, RuncOptions options, Scheduler io) {
        ProcessHandle self = ProcessHandle.current();
        long started = self.info().startInstant().map(Instant::toEpochMilli).orElse(0L);
        return write(bundle, new LaunchRecord(BundleInspection.ShimKind.LOCAL, options.runtimeRoot(),
                options.effectiveBinaryName(), null, null, self.pid(), started), io);
    }

    private static Mono<Void> write(Bundle bundle, LaunchRecord record, Scheduler io) {
        return Mono.<Void>fromCallable(() -> {
            record.write(bundle.workDir());
            return null;
        }).subscribeOn(io);
    }
}
