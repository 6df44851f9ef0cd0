package org.shimmer.runtime.linux.cleanup;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.bundle.BundleMounts;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.shimmer.runtime.linux.sys.Procfs;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;

/**
 * {@link org.shimmer.runtime.RuntimePlugin#forceDelete}: stops whatever lives for a bundle, found on the machine
 * rather than remembered (the host that started it may have crashed at any point), then deletes the bundle.
 *
 * <p>Invariants: a process is signalled only through a pidfd opened before it was recognised as the bundle's, so a
 * recycled pid is never hit; a mount is detached, never removed through; the bundle is deleted only once the
 * inspection finds nothing alive.
 */
public final class BundleReaper {

    /** The local shim of a bundle whose container this JVM holds. */
    @FunctionalInterface
    public interface LocalShimSource {
        Mono<ShimClient> client(String namespace, String id, RuncOptions options);
    }

    /**
     * Reaps a process once it is gone and this JVM adopted it (as a child subreaper), now or later: a killed process
     * that is our child, or becomes one when its parent dies, would otherwise stay a zombie of the JVM for good
     * (issue 9). Called only for processes that are never a {@code ProcessBuilder} child of this JVM.
     */
    @FunctionalInterface
    public interface Adopted {
        void reapWhenGone(int pid) throws IOException;
    }

    /** Ends the task through this runtime's clients of a bundle's live shim, if any, and detaches them. */
    @FunctionalInterface
    public interface AttachedClients {
        Mono<Void> endAttached(Path bundleDir);
    }

    /** The store's delete, run once nothing lives. */
    @FunctionalInterface
    public interface BundleDelete {
        Mono<Void> delete(String namespace, String id);
    }

    /** How long killed processes get to disappear, and how long a local shim gets to stop its container. */
    static final Duration STOP_TIMEOUT = Duration.ofSeconds(10);

    /** How often processes are searched for again: a shim start killed midway may just have forked its daemon. */
    private static final int KILL_ROUNDS = 5;

    /** How often the whole stop is tried before the bundle is reported as still in use. */
    private static final int STOP_ATTEMPTS = 3;

    /** Where {@code containerd-shim-runc-v2} puts its sockets. */
    private static final Path SHIM_SOCKETS = Path.of("/run/containerd/s");

    private static final int SIGKILL = 9;

    private static final Logger log = LoggerFactory.getLogger(BundleReaper.class);

    private final BundleInspector inspector;
    private final Scheduler io;
    private final LocalShimSource local;
    private final BundleDelete delete;
    private final Adopted adopted;
    private final AttachedClients attached;

    public BundleReaper(BundleInspector inspector, Scheduler io, LocalShimSource local, BundleDelete delete,
            Adopted adopted, AttachedClients attached) {
        this.inspector = Objects.requireNonNull(inspector, "inspector");
        this.io = Objects.requireNonNull(io, "io");
        this.local = Objects.requireNonNull(local, "local");
        this.delete = Objects.requireNonNull(delete, "delete");
        this.adopted = Objects.requireNonNull(adopted, "adopted");
        this.attached = Objects.requireNonNull(attached, "attached");
    }

    /** See {@link org.shimmer.runtime.RuntimePlugin#forceDelete}. */
    public Mono<Void> forceDelete(String namespace, String id) {
        return Mono.fromRunnable(inspector::requireOwnWorkRoot).subscribeOn(io).then(Mono.defer(() -> {
            BundleInspector.Target target = inspector.target(namespace, id);
            // Ended through an attached client's shim, then detached: a client that saw its shim killed would run
            // the dead-shim cleanup in the bundle.
            return attached.endAttached(target.bundleDir)
                    .then(Mono.fromCallable(() -> heldHere(target).orElse(null)).subscribeOn(io))
                    .flatMap(options -> stopThroughLocalShim(target, options))
                    .then(Mono.fromRunnable(() -> stopEverything(target)).subscribeOn(io))
                    .then(delete.delete(namespace, id));
        }));
    }

    /** The runc options of a local container this JVM holds (its exit monitor must see the exit), if any. */
    private static Optional<RuncOptions> heldHere(BundleInspector.Target target) {
        return target.launch()
                .filter(record -> record.kind() == BundleInspection.ShimKind.LOCAL
                        && record.hostPid() == ProcessHandle.current().pid()
                        && Files.exists(target.workDir.resolve("local.json")))
                .map(record -> RuncOptions.defaults().withRuntimeRoot(record.runtimeRoot())
                        .withBinaryName(record.runcBinary()));
    }

    /** Kill, wait, delete, shut down: the shim's own bookkeeping ends as for any exit. Failures fall through. */
    private Mono<Void> stopThroughLocalShim(BundleInspector.Target target, RuncOptions options) {
        return local.client(target.namespace, target.id, options)
                .flatMap(shim -> shim.kill(SIGKILL, true).onErrorResume(notRunning -> Mono.empty())
                        .then(shim.awaitExit().timeout(STOP_TIMEOUT, io))
                        .then(shim.delete())
                        .then(shim.shutdown()))
                .onErrorResume(error -> {
                    log.debug("the local shim of {}/{} did not stop its container ({}); forcing it", target.namespace,
                            target.id, error.toString());
                    return Mono.empty();
                });
    }

    /** Blocking: runc container, processes, mounts, socket, in that order; then checks nothing is left. */
    private void stopEverything(BundleInspector.Target target) {
        try {
            RuncContainer runc = target.runc();
            BundleProcesses processes = target.processes(runc);
            Optional<Path> socket = target.socket();
            String name = target.namespace + "/" + target.id;
            BundleInspection left = null;
            // Another attempt if something appeared meanwhile: a client of the killed shim in some host runs the
            // shim's own delete in the bundle when it sees the shim die.
            for (int attempt = 0; attempt < STOP_ATTEMPTS && (left == null || stillThere(left)); attempt++) {
                // runc first, while a live shim still reaps the container's init: killed after its shim, the init
                // waits as a zombie of pid 1, and runc delete --force waits for it to go for up to 10 s.
                reapAdoptedInit(runc);
                runc.forceRemove();
                killAll(processes, name);
                // A create that was in flight may have made runc state meanwhile; a runc init whose create was
                // killed is findable only by its state dir.
                runc.forceRemove();
                killAll(processes, name);
                unmountAll(target.bundleDir, target.workDir);
                runc.removeLeftCgroups(target.bundleDir.getParent().getParent(), target.namespace, target.bundleDir);
                removeSocket(socket);
                removeSocket(target.launch().flatMap(record -> computedSocket(record, target.namespace, target.id)));
                left = target.inspect();
            }
            if (stillThere(left)) {
                throw new FailedPreconditionException("bundle " + name + " still in use after a forced stop ("
                        + BundleInspector.describe(left) + (left.mounts().isEmpty() ? "" : ", mounts "
                        + left.mounts()) + ")");
            }
        } catch (IOException e) {
            throw new ShimException("cannot force the delete of bundle " + target.namespace + "/" + target.id + ": "
                    + e.getMessage(), e);
        }
    }

    /**
     * Reaps, once killed, the container's init if this JVM adopts it: when its remote shim died, or dies in this
     * delete before it reaped the init. The session that reaps it was detached first, and runc kills no process it
     * is the parent of, so the init stayed a zombie of the JVM; watched only when the shim was already dead, an
     * init killed under a shim killed next was left too. runc's state names the init only while runc finds it
     * alive with its start time.
     */
    private void reapAdoptedInit(RuncContainer runc) throws IOException {
        Optional<BundleInspection.Container> container = runc.state();
        if (container.isPresent() && container.get().pid() > 0 && !container.get().status().equals("stopped")) {
            try {
                adopted.reapWhenGone(container.get().pid());
            } catch (IOException gone) {
                // It exited and was reaped since runc looked: nothing left to reap.
            }
        }
    }

    private static boolean stillThere(BundleInspection left) {
        return left.inUse() || !left.mounts().isEmpty();
    }

    private void killAll(BundleProcesses processes, String name) throws IOException {
        for (int round = 0; round < KILL_ROUNDS; round++) {
            List<BundleProcesses.Found> found = processes.scan();
            if (found.isEmpty()) {
                return;
            }
            // The pidfds that signalled the kills also tell their exits: no pid is looked up again.
            List<OwnedFd> killed = new ArrayList<>();
            try {
                for (BundleProcesses.Found process : found) {
                    kill(processes, process, name, killed);
                }
                BundleInspector.awaitExits(killed, STOP_TIMEOUT);
            } finally {
                killed.forEach(OwnedFd::close);
            }
        }
    }

    /**
     * SIGKILL through a pidfd taken before the process is recognised again: a recycled pid is never hit. A shim
     * daemon or a container's {@code runc init} is never started by a {@code ProcessBuilder} ({@code shim start}
     * forks the one, runc the other), so it is reaped once gone if the JVM adopts it, now or when its parent dies:
     * a daemon killed while its {@code shim start} still ran became our zombie after that start exited. The process's
     * descendants are killed with it; every pidfd that signalled is added to {@code killed}.
     */
    private void kill(BundleProcesses processes, BundleProcesses.Found process, String name, List<OwnedFd> killed) {
        OwnedFd pidfd;
        try {
            pidfd = OwnedFd.pidfd(process.pid());
        } catch (IOException gone) {
            return;
        }
        try {
            Optional<BundleProcesses.Found> now = processes.recognise(process.pid());
            if (now.isEmpty()) {
                pidfd.close();
                return;
            }
            if (now.get().neverSpawnedByJdk()) {
                // Watched while it is alive and recognised: once killed and reaped its pid may name anyone.
                adopted.reapWhenGone(process.pid());
            }
            // Its descendants are never children a JDK started (their parent is not the JVM), and the JVM inherits
            // them when it dies: a `runc delete` under a killed `shim delete` was left a zombie of the JVM (CI).
            List<Integer> descendants = Procfs.descendants(process.pid());
            for (int descendant : descendants) {
                try {
                    adopted.reapWhenGone(descendant);
                } catch (IOException gone) {
                    // Exited and reaped already.
                }
            }
            // They go too, first: what a runc create forked besides runc init (an OCI hook) is recognised by
            // nothing of the bundle, and once the create was killed it ran on as pid 1's (a hook held by a host
            // killed in mid-create outlived the forced delete).
            killed.addAll(killDescendants(process.pid(), descendants, name));
            pidfd.use(number -> {
                LinuxCalls.pidfdSendSignal(number, SIGKILL);
                return null;
            });
            log.info("killed pid {} of bundle {}", process.pid(), name);
            killed.add(pidfd);
        } catch (IOException | RuntimeException gone) {
            pidfd.close();
        }
    }

    /**
     * SIGKILL, each through a pidfd opened while its process is still below {@code root} (its parent is
     * {@code root} or one of {@code descendants}, read after the pidfd was opened): a pid recycled since the list
     * was read is never hit. Every pidfd is opened and checked before any signal: a process killed first has its
     * children reparented at once, and a grandchild (a hook script's {@code sleep}) then failed the parent check and
     * outlived the delete. Returns the pidfds that signalled.
     */
    private static List<OwnedFd> killDescendants(int root, List<Integer> descendants, String name) {
        List<OwnedFd> below = new ArrayList<>();
        List<Integer> belowPids = new ArrayList<>();
        for (int descendant : descendants) {
            OwnedFd pidfd;
            try {
                pidfd = OwnedFd.pidfd(descendant);
            } catch (IOException gone) {
                continue;
            }
            long parent = Procfs.parentPid(descendant);
            if (parent != root && !descendants.contains((int) parent)) {
                pidfd.close();
                continue;
            }
            below.add(pidfd);
            belowPids.add(descendant);
        }
        List<OwnedFd> signalled = new ArrayList<>();
        for (int i = 0; i < below.size(); i++) {
            OwnedFd pidfd = below.get(i);
            try {
                pidfd.use(number -> {
                    LinuxCalls.pidfdSendSignal(number, SIGKILL);
                    return null;
                });
                log.info("killed pid {} (below pid {}) of bundle {}", belowPids.get(i), root, name);
                signalled.add(pidfd);
            } catch (IOException | RuntimeException gone) {
                pidfd.close();
            }
        }
        return signalled;
    }

    /** Detaches every mount of the bundle (hidden trees too), deepest first; one that went meanwhile is fine. */
    private static void unmountAll(Path bundleDir, Path workDir) throws IOException {
        List<Path> mounts = BundleMounts.paths(bundleDir, workDir);
        for (Path mount : mounts.reversed()) {
            try {
                LinuxCalls.umount2(mount.toString(), LinuxCalls.MNT_DETACH);
            } catch (IOException notMounted) {
                log.debug("umount {}: {}", mount, notMounted.getMessage());
            }
        }
    }

    /**
     * Removes {@code socket} if it is a socket in the shims' directory, not following a link. Only a shim socket: the
     * path comes from a file of the bundle (its address, the shim's record), and must never make us remove another
     * service's socket (containerd's own, say), or any other file.
     */
    public static void removeShimSocket(Path socket) throws IOException {
        if (!SHIM_SOCKETS.equals(socket.normalize().getParent())) {
            return;
        }
        try {
            BasicFileAttributes attributes = Files.readAttributes(socket, BasicFileAttributes.class,
                    LinkOption.NOFOLLOW_LINKS);
            if (attributes.isOther() && !served(socket) && Objects.equals(attributes.fileKey(),
                    Files.readAttributes(socket, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey())) {
                Files.deleteIfExists(socket);
            }
        } catch (NoSuchFileException absent) {
            // Gone with its shim, or never made.
        }
    }

    /**
     * Whether a live process still serves {@code socket}. Called once this bundle's own shim is gone, so a listener
     * is another's: two state roots with one daemon address name the same shim socket for a bundle of the same
     * namespace and id, and the forced delete of the second removed the first one's live socket (its shim then
     * unreachable for good). Only a refused connection says nobody serves it (the caller then removes the file only
     * if it is still the one probed); a full backlog or a failed probe leaves it.
     */
    private static boolean served(Path socket) {
        try {
            LinuxCalls.UnixProbe probe = LinuxCalls.probeUnix(socket);
            if (probe == LinuxCalls.UnixProbe.LISTENING) {
                log.info("left the shim socket {}: a live process serves it", socket);
            }
            return probe == LinuxCalls.UnixProbe.LISTENING;
        } catch (IOException | RuntimeException unprobed) {
            log.info("left the shim socket {}: {}", socket, unprobed.toString());
            return true;
        }
    }

    private static void removeSocket(Optional<Path> socket) throws IOException {
        if (socket.isPresent()) {
            removeShimSocket(socket.get());
        }
    }

    /**
     * The socket {@code containerd-shim-runc-v2} makes before it writes {@code address}: {@code
     * /run/containerd/s/<hex sha256 of "<address>/<namespace>/<id>">}. A host killed between the two leaves it.
     */
    static Optional<Path> computedSocket(LaunchRecord record, String namespace, String id) {
        if (record.daemonAddress() == null) {
            return Optional.empty();
        }
        String joined = Path.of(record.daemonAddress(), namespace, id).normalize().toString();
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(joined.getBytes(StandardCharsets.UTF_8));
            return Optional.of(SHIM_SOCKETS.resolve(HexFormat.of().formatHex(digest)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }
}
