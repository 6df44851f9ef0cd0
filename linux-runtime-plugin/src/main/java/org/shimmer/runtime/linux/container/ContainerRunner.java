package org.shimmer.runtime.linux.container;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.linux.bundle.StorageErrors;
import org.shimmer.runtime.linux.image.ImageStore;
import org.shimmer.runtime.linux.shim.Operations;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.MountTable;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.spec.Spec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import reactor.core.scheduler.Scheduler;

/**
 * {@link RuntimePlugin#run}: (for an image, its lease and merged spec,) bundle, overlay root, shim, task, start,
 * each undone in reverse when a later one fails.
 *
 * <p>As the shims' {@code Operations.runToEnd}: the run goes to its end whatever its subscriber does (a step
 * cannot be undone while it runs), and a container nobody took, because the run was cancelled, is released then.
 * A run of a container whose earlier run, or a release of it, is still going waits for it first (at most
 * {@link #EARLIER_BOUND}), so a host that cancels and retries gets its container rather than
 * {@code AlreadyExistsException} from the leftover. A cancelled run skips the steps it has not begun and releases
 * what exists as soon as the step under way ends.
 */
public final class ContainerRunner {

    private static final Logger log = LoggerFactory.getLogger(ContainerRunner.class);
    private static final int PENDING = 0;
    private static final int TAKEN = 1;
    private static final int ABANDONED = 2;
    /** The longest a run waits for an earlier one of its id: a release's steps are bounded, this bounds the rest. */
    static final Duration EARLIER_BOUND = Duration.ofMinutes(1);
    /** The spec's root: the bundle's {@code rootfs} directory, where the shim mounts the overlay. */
    static final String BUNDLE_ROOTFS = "rootfs";

    private final RuntimePlugin runtime;
    private final ImageStore images;
    private final Scheduler io;
    private final Scheduler output;
    /**
     * Per namespace/id, the run in flight (or its undo) or the release of its container: completes once it left a
     * container to its caller, or nothing. Shared by every runner of the state root.
     */
    private final ConcurrentMap<String, Mono<Void>> inFlight;

    /**
     * @param runtime the runtime view the bundle is made in, and force-deleted through when a release needs it
     * @param images the store a run from an image leases its image from
     * @param io the runtime's scheduler for blocking work
     * @param output the runtime's scheduler for calling output subscribers, which may block
     * @param inFlight the runs and releases in flight, shared by every view of the same state root
     */
    public ContainerRunner(RuntimePlugin runtime, ImageStore images, Scheduler io, Scheduler output,
            ConcurrentMap<String, Mono<Void>> inFlight) {
        this.runtime = runtime;
        this.images = images;
        this.io = io;
        this.output = output;
        this.inFlight = inFlight;
    }

    public Mono<Container> run(RunRequest request) {
        return Mono.defer(() -> {
            String key = request.namespace() + "/" + request.id();
            // Without args runc's create fails late, after the shim was started; an image's are merged in later.
            if (request.image() == null && request.spec().process().args().isEmpty()) {
                return Mono.error(new InvalidSpecException("run container " + key + ": invalid process.args: empty"
                        + " (no image supplies them)"));
            }
            // The terminal is the request's to give: a spec asking for one without it would fail only at create.
            if (request.terminal() == null && request.spec().process().terminal()) {
                return Mono.error(InvalidSpecException.ofField("process.terminal", "true for container " + key
                        + ", but the run request has no terminal (use RunRequest.withTerminal)"));
            }
            Sinks.Empty<Void> settled = Sinks.empty();
            Mono<Void> mine = settled.asMono();
            Mono<Void> earlier = inFlight.put(key, mine);
            Runnable settle = () -> {
                inFlight.remove(key, mine);
                settled.tryEmitEmpty();
            };
            AtomicBoolean cancelled = new AtomicBoolean();
            CompletableFuture<LinuxContainer> running = (earlier == null ? Mono.<Void>empty() : earlier
                            .onErrorComplete()
                            .timeout(EARLIER_BOUND, Mono.fromRunnable(() -> log.warn("run of {} waited {} for an "
                                    + "earlier run or release; going on", key, EARLIER_BOUND))))
                    .then(steps(request, key, cancelled::get))
                    .toFuture();
            // A failed run released what it made before failing: settled.
            running.whenComplete((container, error) -> {
                if (container == null) {
                    settle.run();
                }
            });
            // Taken or abandoned, decided once: a container handed out is never released here, a released one
            // never handed out.
            AtomicInteger fate = new AtomicInteger(PENDING);
            return Operations.awaiting(running)
                    // The cancel below sets the flag before it reaches fromFuture: a step that saw the flag failed the
                    // run in between, and fromFuture, not cancelled yet, handed that error to a subscriber that had
                    // cancelled (a randomized usingWhen test saw it once in about 800 runs). Nobody waits for it.
                    .onErrorResume(CancellationException.class,
                            stopped -> cancelled.get() ? Mono.never() : Mono.error(stopped))
                    .filter(container -> {
                        boolean taken = fate.compareAndSet(PENDING, TAKEN);
                        if (taken) {
                            settle.run();
                        }
                        return taken;
                    })
                    .doOnCancel(() -> {
                        cancelled.set(true);
                        running.whenComplete((container, error) -> {
                            if (container != null && fate.compareAndSet(PENDING, ABANDONED)) {
                                container.release().doFinally(signal -> settle.run()).subscribe(done -> {},
                                        failure -> log.warn("could not release container {} of a cancelled run",
                                                key, failure));
                            } else if (error != null) {
                                log.debug("cancelled run of {} failed", key, error);
                            }
                        });
                    })
                    .cast(Container.class);
        });
    }

    private Mono<LinuxContainer> steps(RunRequest request, String key, BooleanSupplier cancelled) {
        // Checked before anything (an image's lease too) is made.
        Mono<Void> checked = Mono.<Void>fromRunnable(() -> {
                    LinuxContainer.checkNotCancelled(cancelled, key);
                    RootfsOverlay.checkUpperFileSystem(key, runtime.config().workRoot(), runtime.config().workRoot()
                            .resolve(request.namespace()).resolve(request.id()));
                })
                .subscribeOn(io);
        return checked.then(request.image() != null ? fromImage(request, key, cancelled) : Mono.fromCallable(() -> {
                    LinuxContainer.checkNotCancelled(cancelled, key);
                    return rootfs(request, key);
                })
                .subscribeOn(io)
                .flatMap(lower -> launch(request, key, cancelled, request.spec(), List.of(lower))));
    }

    /**
     * Leases the image for the bundle to be made (so it cannot be removed while the container exists), merges its
     * configuration into the spec and runs on its layers. A run that fails leaves its lease file: once unlocked and
     * without its bundle it is stale, and the next remove drops it. Deleting it here once took the lease of a running
     * container of the same id and image (the same file), and a remove then took that container's layers.
     */
    private Mono<LinuxContainer> fromImage(RunRequest request, String key, BooleanSupplier cancelled) {
        Path bundleDir = runtime.config().stateRoot().resolve(request.namespace()).resolve(request.id());
        return Mono.fromRunnable(() -> LinuxContainer.checkNotCancelled(cancelled, key))
                .then(images.lease(request.image(), bundleDir))
                .flatMap(lease -> Mono.fromCallable(() -> ImageSpecs.merge(request.spec(), lease.config(),
                                request.entrypoint(), lease.name(), lease.digest(),
                                new ImageUsers(lease.name(), lease.layers().reversed())))
                        .subscribeOn(io)
                        .flatMap(spec -> launch(request, key, cancelled, spec, lease.layers().reversed()))
                        // Locked (live to a remove) until the run ends: by then its bundle exists, or it is undone.
                        .doFinally(signal -> lease.close()));
    }

    /** Makes the bundle and launches the container on the overlay of {@code lowers} (top first). */
    private Mono<LinuxContainer> launch(RunRequest request, String key, BooleanSupplier cancelled, Spec given,
            List<Path> lowers) {
        // The root is the overlay the shim mounts on the bundle's rootfs directory, never a lower itself; the
        // process has a terminal exactly when the request gives one.
        Spec spec = given.toBuilder().rootPath(BUNDLE_ROOTFS).terminal(request.terminal() != null).build();
        // Checked before anything is made: layers too many for one mount made a bundle only to delete it again.
        RootfsOverlay.mount(key, lowers, runtime.config().workRoot().resolve(request.namespace())
                .resolve(request.id()));
        return runtime.create(request.namespace(), request.id(), spec)
                .flatMap(bundle -> new LinuxContainer(runtime, bundle, spec, lowers, request.outputBuffer(), io,
                        output, release -> track(key, release))
                        .launch(request.shim(), request.runcOptions(), request.terminal() != null
                                ? Stdio.terminal(request.stdin(), request.terminal())
                                : Stdio.streams(request.stdin()), cancelled));
    }

    /**
     * Registers a release of the container {@code key} as in flight until it ends, so that a later run waits for
     * it: a host that cancels a {@code usingWhen} and retries at once gets its container, not
     * {@code AlreadyExistsException} from the release still under way.
     */
    private void track(String key, Mono<Void> release) {
        Mono<Void> ended = release.onErrorComplete();
        Mono<Void> registered = inFlight.merge(key, ended, Mono::when);
        registered.subscribe(null, null, () -> inFlight.remove(key, registered));
    }

    /**
     * The rootfs directory as the overlay's lower layer: its real path, so that a symbolic link changed after the
     * run cannot move the container's root. Blocking.
     *
     * <p>Refused, before anything is made: a directory inside, or holding, the state, work or image root (the
     * container saw its own upper directory, or every bundle), and one with mounts below it, which overlay does
     * not cross (a lower is one file system): they were hidden from the container without a word.
     */
    private Path rootfs(RunRequest request, String key) {
        Path real;
        try {
            real = request.rootfs().toRealPath();
        } catch (IOException absent) {
            real = null;
        }
        if (real == null || !Files.isDirectory(real)) {
            throw new FailedPreconditionException("run container " + key + ": rootfs " + request.rootfs()
                    + " is not a directory");
        }
        RuntimeConfig config = runtime.config();
        for (Map.Entry<String, Path> root : List.of(Map.entry("state root", config.stateRoot()),
                Map.entry("work root", config.workRoot()), Map.entry("image root", config.imageRoot()))) {
            Path rootReal = realPath(root.getValue());
            if (real.startsWith(rootReal) || rootReal.startsWith(real)) {
                throw new FailedPreconditionException("run container " + key + ": rootfs " + request.rootfs()
                        + " (" + real + ") " + (real.startsWith(rootReal) ? "is inside" : "holds") + " the "
                        + root.getKey() + " " + root.getValue() + " (" + rootReal + "); the container would see"
                        + " its own or other containers' files: use a directory apart from them");
            }
        }
        List<MountTable.MountPoint> below;
        try {
            byte[] at = real.toString().getBytes(LinuxCalls.FILE_NAMES);
            below = MountTable.atOrUnder(MountTable.mountPoints(), real).stream()
                    .filter(point -> !Arrays.equals(point.name(), at)).toList();
        } catch (IOException e) {
            throw StorageErrors.typed("read the mounts below rootfs " + real + " of container " + key, e);
        }
        if (!below.isEmpty()) {
            throw new FailedPreconditionException("run container " + key + ": rootfs " + request.rootfs() + " ("
                    + real + ") has mounts below it, which its overlay root would hide: " + below + "; unmount"
                    + " them, or give them to the container as spec mounts");
        }
        return real;
    }

    /** The real path of {@code path}, which need not exist: its nearest existing directory's, then the rest. */
    private static Path realPath(Path path) {
        Path existing = path.toAbsolutePath().normalize();
        while (existing.getParent() != null) {
            try {
                return existing.toRealPath().resolve(existing.relativize(path.toAbsolutePath().normalize()));
            } catch (IOException absent) {
                existing = existing.getParent();
            }
        }
        return existing;
    }
}
