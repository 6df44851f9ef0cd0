package org.shimmer.runtime.linux.cleanup;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.Collectors;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.linux.bundle.BundleMounts;
import org.shimmer.runtime.linux.bundle.DeleteGuard;
import org.shimmer.runtime.linux.bundle.WorkRootClaim;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.shimmer.runtime.linux.sys.Procfs;
import org.shimmer.runtime.shim.ShimException;

/**
 * Finds what is alive for a bundle from the machine itself ({@code /proc}, runc, mountinfo) and the records in its
 * directories, so that it works after any crash. Also the {@link DeleteGuard} of the bundle store: a bundle in use
 * is never deleted. Blocking; callers run it on the io scheduler.
 */
public final class BundleInspector implements DeleteGuard {

    /** A remote shim that removed its socket is shutting down; delete waits this long for it to be gone. */
    static final Duration SHUTDOWN_GRACE = Duration.ofSeconds(3);

    private static final String LOCAL_RECORD = "local.json";
    private static final String SHIM_RECORD = "shim.json";

    private final RuntimeConfig config;

    public BundleInspector(RuntimeConfig config) {
        this.config = Objects.requireNonNull(config, "config");
    }

    /** See {@link org.shimmer.runtime.RuntimePlugin#inspect}. */
    public BundleInspection inspect(String namespace, String id) {
        try {
            return target(namespace, id).inspect();
        } catch (IOException e) {
            throw new ShimException("cannot inspect bundle " + namespace + "/" + id + ": " + e.getMessage(), e);
        }
    }

    /**
     * Refuses to delete a bundle in use. A remote shim that is shutting down (it removed its socket; the caller
     * usually just shut it down) is given {@link #SHUTDOWN_GRACE} to exit first.
     */
    @Override
    public void requireUnused(Bundle bundle) {
        Target target = target(bundle.namespace(), bundle.id());
        try {
            // Without the mount table: mounts do not make a bundle in use, and the store's delete reads the table
            // itself, under the bundle's lock, before it touches anything (two reads of it per delete, each
            // growing with the machine's mounts, were a tenth of a bundle delete).
            BundleInspection found = target.inspect(false);
            if (found.inUse() && target.shuttingDown(found)) {
                awaitGone(found.processes(), SHUTDOWN_GRACE);
                found = target.inspect(false);
            }
            if (found.inUse()) {
                // The refusal names what is mounted there too.
                found = new BundleInspection(found.namespace(), found.id(), found.present(), found.complete(),
                        found.shim(), found.container(), found.processes(), target.mounts());
                throw new FailedPreconditionException("bundle " + bundle.namespace() + "/" + bundle.id()
                        + " is in use (" + describe(found) + "); nothing was deleted: delete its task and shut its"
                        + " shim down first, or force the delete");
            }
        } catch (IOException e) {
            throw new ShimException("cannot tell whether bundle " + bundle.namespace() + "/" + bundle.id()
                    + " is in use: " + e.getMessage(), e);
        }
    }

    /**
     * Refuses a work root that serves another state root ({@link WorkRootClaim}) before a forced delete reads its
     * records: it killed the other root's container of the same namespace and id. Blocking.
     */
    void requireOwnWorkRoot() {
        try {
            WorkRootClaim.require(config.workRoot(), config.stateRoot());
        } catch (IOException e) {
            throw new ShimException("cannot read the owner of work root " + config.workRoot() + ": " + e.getMessage(),
                    e);
        }
    }

    Target target(String namespace, String id) {
        Identifiers.requireValid("namespace", namespace);
        Identifiers.requireValid("id", id);
        return new Target(namespace, id, config.stateRoot().resolve(namespace).resolve(id),
                config.workRoot().resolve(namespace).resolve(id));
    }

    /** What is in use, for an error message: "shim pid 12, runc container running pid 34, processes [56]". */
    static String describe(BundleInspection found) {
        List<String> parts = new ArrayList<>();
        found.shim().filter(BundleInspection.Shim::alive).ifPresent(shim ->
                parts.add(shim.kind().name().toLowerCase() + " shim pid " + shim.pid()));
        found.container().ifPresent(container -> parts.add("runc container " + container.status()
                + (container.pid() != 0 ? " pid " + container.pid() : "")));
        if (!found.processes().isEmpty()) {
            parts.add("processes " + found.processes());
        }
        if (!found.mounts().isEmpty()) {
            parts.add("mounted at " + found.mounts().stream().map(Path::toString).collect(Collectors.joining(", ")));
        }
        return String.join(", ", parts);
    }

    /**
     * Waits, at most {@code timeout} in all, until each of {@code pids} has exited: through a pidfd, which signals
     * the exit of any process, not only of our children. A pid that cannot be opened is gone already.
     */
    static void awaitGone(List<Integer> pids, Duration timeout) {
        List<OwnedFd> pidfds = new ArrayList<>();
        for (int pid : pids) {
            try {
                pidfds.add(OwnedFd.pidfd(pid));
            } catch (IOException gone) {
                // Exited and reaped already.
            }
        }
        awaitExits(pidfds, timeout);
        pidfds.forEach(OwnedFd::close);
    }

    /** Waits, at most {@code timeout} in all, until the process of each pidfd has exited; closes none. */
    static void awaitExits(List<OwnedFd> pidfds, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        for (OwnedFd pidfd : pidfds) {
            try {
                if (!pidfd.awaitReadable(Duration.ofNanos(Math.max(0, deadline - System.nanoTime())))) {
                    return;
                }
            } catch (IOException unusable) {
                // Nothing to wait on: the next inspection tells what is left.
            }
        }
    }

    /** One bundle's directories and what its records say. */
    final class Target {
        final String namespace;
        final String id;
        final Path bundleDir;
        final Path workDir;

        Target(String namespace, String id, Path bundleDir, Path workDir) {
            this.namespace = namespace;
            this.id = id;
            this.bundleDir = bundleDir;
            this.workDir = workDir;
        }

        Optional<LaunchRecord> launch() {
            try {
                return LaunchRecord.read(workDir);
            } catch (NoSuchFileException absent) {
                return Optional.empty();
            } catch (IOException unreadable) {
                // Written atomically, so only a foreign file is unreadable: the defaults are tried instead.
                return Optional.empty();
            }
        }

        RuncContainer runc() {
            return runc(launch());
        }

        private RuncContainer runc(Optional<LaunchRecord> launch) {
            String root = launch.map(LaunchRecord::runtimeRoot)
                    .orElseGet(() -> RuncOptions.defaults().effectiveRuntimeRoot(config.stateRoot()));
            String binary = launch.map(LaunchRecord::runcBinary).orElse(RuncOptions.DEFAULT_BINARY_NAME);
            return new RuncContainer(binary, Path.of(root), namespace, id);
        }

        BundleProcesses processes(RuncContainer runc) {
            return new BundleProcesses(namespace, id, bundleDir, runc.stateDir());
        }

        BundleInspection inspect() throws IOException {
            return inspect(true);
        }

        /** What lives for the bundle now; its mounts only {@code withMounts} (none listed otherwise). */
        BundleInspection inspect(boolean withMounts) throws IOException {
            boolean present = Files.exists(bundleDir, LinkOption.NOFOLLOW_LINKS)
                    || Files.exists(workDir, LinkOption.NOFOLLOW_LINKS);
            boolean complete = Files.isDirectory(bundleDir, LinkOption.NOFOLLOW_LINKS)
                    && Files.isRegularFile(bundleDir.resolve("config.json"), LinkOption.NOFOLLOW_LINKS);
            // Read and parsed once: every delete inspects.
            Optional<LaunchRecord> launch = launch();
            RuncContainer runc = runc(launch);
            List<BundleProcesses.Found> found = processes(runc).scan();
            Optional<BundleInspection.Container> container = runc.state();
            return new BundleInspection(namespace, id, present, complete, shim(found, launch),
                    container, found.stream().map(BundleProcesses.Found::pid).toList(),
                    withMounts ? mounts() : List.of());
        }

        /** What is mounted for the bundle now (its two directories, its hidden trees), shallowest first. */
        List<Path> mounts() throws IOException {
            return BundleMounts.paths(bundleDir, workDir);
        }

        private Optional<BundleInspection.Shim> shim(List<BundleProcesses.Found> found,
                Optional<LaunchRecord> launch) {
            boolean local = launch.map(record -> record.kind() == BundleInspection.ShimKind.LOCAL)
                    .orElseGet(() -> Files.exists(workDir.resolve(LOCAL_RECORD)));
            if (local) {
                long pid = launch.map(LaunchRecord::hostPid).orElse(0L);
                long started = launch.map(LaunchRecord::hostStartMillis).orElse(0L);
                boolean holdsTask = Files.exists(workDir.resolve(LOCAL_RECORD));
                return Optional.of(new BundleInspection.Shim(BundleInspection.ShimKind.LOCAL, (int) pid,
                        holdsTask && isHost(pid, started)));
            }
            Optional<BundleProcesses.Found> daemon = found.stream().filter(BundleProcesses.Found::shimDaemon)
                    .findFirst();
            boolean remote = launch.isPresent() || daemon.isPresent()
                    || Files.exists(workDir.resolve(SHIM_RECORD)) || Files.exists(bundleDir.resolve("address"));
            if (!remote) {
                return Optional.empty();
            }
            int pid = daemon.map(BundleProcesses.Found::pid).orElse(0);
            return Optional.of(new BundleInspection.Shim(BundleInspection.ShimKind.REMOTE, pid,
                    daemon.isPresent() && !socket().map(path -> !Files.exists(path)).orElse(false)));
        }

        /** Nothing runs but a remote shim daemon that already removed its socket. */
        boolean shuttingDown(BundleInspection found) {
            return found.container().isEmpty() && found.shim().isPresent()
                    && found.shim().get().kind() == BundleInspection.ShimKind.REMOTE && !found.shim().get().alive();
        }

        /** The remote shim's socket, from the {@code address} file it writes into the bundle at start. */
        Optional<Path> socket() {
            try {
                String address = Files.readString(bundleDir.resolve("address"), StandardCharsets.UTF_8).strip();
                return address.startsWith("unix://") ? Optional.of(Path.of(address.substring("unix://".length())))
                        : Optional.empty();
            } catch (IOException | RuntimeException absent) {
                return Optional.empty();
            }
        }
    }

    /** Whether {@code pid} is the JVM that started at {@code startMillis}, not a process that reused its pid. */
    static boolean isHost(long pid, long startMillis) {
        if (pid <= 0) {
            return false;
        }
        if (pid == SelfProcess.PID) {
            // The usual host of a local record: this JVM, whose start was read once.
            return SelfProcess.START_MILLIS != 0 && Math.abs(SelfProcess.START_MILLIS - startMillis) < 1000;
        }
        Optional<ProcessHandle> handle = ProcessHandle.of(pid);
        if (handle.isEmpty() || !Procfs.isLive((int) pid)) {
            return false;
        }
        Optional<Instant> started = handle.get().info().startInstant();
        return started.map(instant -> Math.abs(instant.toEpochMilli() - startMillis) < 1000).orElse(false);
    }
}
