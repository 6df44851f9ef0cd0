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
            if (mayRecord(bundle, options, BundleInspection.ShimKind.REMOTE)) {
                record.write(bundle.workDir());
            }
            return null;
        }).subscribeOn(io);
    }

    /**
     * Before a local shim runs here: this JVM holds the container from now on. Blocking; on the io task that takes
     * the shim, without a hop of its own.
     */
    public static void recordLocal(Bundle bundle, RuncOptions options) throws IOException {
        if (!mayRecord(bundle, options, BundleInspection.ShimKind.LOCAL)) {
            return;
        }
        new LaunchRecord(BundleInspection.ShimKind.LOCAL, options.runtimeRoot(), options.effectiveBinaryName(), null,
                null, SelfProcess.PID, SelfProcess.START_MILLIS).write(bundle.workDir());
    }

    /**
     * Whether a launch of {@code kind} from this JVM may write the bundle's record, which names who holds its
     * container: yes when runc has no container for the bundle, or the container is a local one this JVM holds
     * already or whose JVM is gone (a local shim here adopts it). A second client's launch (refused later, at its
     * create) once rewrote the record of a running container, and inspect and cleanup then took a live remote
     * shim's container for a dead local one's. Blocking.
     */
    static boolean mayRecord(Bundle bundle, RuncOptions options, BundleInspection.ShimKind kind) {
        Optional<LaunchRecord> launch = readQuietly(bundle);
        if (!meetsContainer(bundle, options, launch)) {
            return true;
        }
        return kind == BundleInspection.ShimKind.LOCAL && heldByLocalShimHereOrGone(bundle);
    }

    /**
     * Whether the bundle's launch record says a local shim holds its container from this JVM or from one that is
     * gone: a container runc has for the bundle that no {@code local.json} names is then what a local create ended
     * midway left, for a local shim here to take. Not one a remote shim holds (a local client took the running
     * container of containerd's shim for its own task), nor one another live JVM is making. Blocking.
     */
    public static boolean heldByLocalShimHereOrGone(Bundle bundle) {
        Optional<LaunchRecord> launch = readQuietly(bundle);
        return launch.isPresent() && launch.get().kind() == BundleInspection.ShimKind.LOCAL
                && (launch.get().hostPid() == SelfProcess.PID
                        || !BundleInspector.isHost(launch.get().hostPid(), launch.get().hostStartMillis()));
    }

    /** This JVM's pid, as records name it. */
    public static long thisJvmPid() {
        return SelfProcess.PID;
    }

    /** When this JVM started, in epoch milliseconds, as records name it; 0 when unknown. */
    public static long thisJvmStartMillis() {
        return SelfProcess.START_MILLIS;
    }

    /** Whether a record's host, {@code pid} started at {@code startMillis}, is this JVM. */
    public static boolean isThisJvm(long pid, long startMillis) {
        return pid == SelfProcess.PID && BundleInspector.isHost(pid, startMillis);
    }

    /**
     * Whether runc still has the bundle's container: its state directory under the root the shim was launched with
     * (the launch record's), or under {@code options}' root when none was recorded. runc keeps that directory from
     * early in {@code runc create} until the container's delete. Blocking.
     */
    public static boolean runcHasContainer(Bundle bundle, RuncOptions options) {
        Optional<LaunchRecord> launch = readQuietly(bundle);
        return hasState(bundle, launch.map(LaunchRecord::runtimeRoot).orElseGet(options::runtimeRoot));
    }

    /**
     * Whether a create with {@code options} would meet a container runc has for the bundle: under the launch
     * record's root (the container a first client made) or under {@code options}' own. Blocking.
     */
    public static boolean createWouldMeetContainer(Bundle bundle, RuncOptions options) {
        return meetsContainer(bundle, options, readQuietly(bundle));
    }

    private static boolean meetsContainer(Bundle bundle, RuncOptions options, Optional<LaunchRecord> launch) {
        String recorded = launch.map(LaunchRecord::runtimeRoot).orElse(null);
        String given = options != null ? options.runtimeRoot() : null;
        return hasState(bundle, recorded) || (given != null && !given.equals(recorded) && hasState(bundle, given));
    }

    private static boolean hasState(Bundle bundle, String root) {
        return root != null && Files.isDirectory(new RuncContainer(RuncOptions.DEFAULT_BINARY_NAME, Path.of(root),
                bundle.namespace(), bundle.id()).stateDir(), LinkOption.NOFOLLOW_LINKS);
    }

    private static Optional<LaunchRecord> readQuietly(Bundle bundle) {
        try {
            return LaunchRecord.read(bundle.workDir());
        } catch (IOException unreadable) {
            // Written atomically, so only a foreign file is unreadable: the given root is tried instead.
            return Optional.empty();
        }
    }
}
