package org.shimmer.runtime.linux.container;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.spec.Spec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import reactor.core.scheduler.Scheduler;

/**
 * {@link RuntimePlugin#run}: bundle, shim, task, start, each undone in reverse when a later one fails.
 *
 * <p>As the shims' {@code Operations.runToEnd}: the run goes to its end whatever its subscriber does (a step
 * cannot be undone while it runs), and a container nobody took, because the run was cancelled, is released then.
 * A run of a container whose earlier run is still going or being undone waits for it first, so a host that
 * cancels and retries gets its container rather than {@code AlreadyExistsException} from the leftover.
 */
public final class ContainerRunner {

    private static final Logger log = LoggerFactory.getLogger(ContainerRunner.class);
    private static final int PENDING = 0;
    private static final int TAKEN = 1;
    private static final int ABANDONED = 2;

    private final RuntimePlugin runtime;
    private final Scheduler io;
    /** Per namespace/id, the run in flight (or its undo): completes once it left a container to its caller or nothing. */
    private final ConcurrentMap<String, Mono<Void>> inFlight = new ConcurrentHashMap<>();

    /**
     * @param runtime the runtime view the bundle is made in, and force-deleted through when a release needs it
     * @param io the runtime's scheduler for blocking work
     */
    public ContainerRunner(RuntimePlugin runtime, Scheduler io) {
        this.runtime = runtime;
        this.io = io;
    }

    public Mono<Container> run(RunRequest request) {
        return Mono.defer(() -> {
            String key = request.namespace() + "/" + request.id();
            Sinks.Empty<Void> settled = Sinks.empty();
            Mono<Void> mine = settled.asMono();
            Mono<Void> earlier = inFlight.put(key, mine);
            Runnable settle = () -> {
                inFlight.remove(key, mine);
                settled.tryEmitEmpty();
            };
            CompletableFuture<LinuxContainer> running = (earlier == null ? Mono.<Void>empty() : earlier)
                    .then(steps(request))
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
            return Mono.fromFuture(running, true)
                    .filter(container -> {
                        boolean taken = fate.compareAndSet(PENDING, TAKEN);
                        if (taken) {
                            settle.run();
                        }
                        return taken;
                    })
                    .doOnCancel(() -> running.whenComplete((container, error) -> {
                        if (container != null && fate.compareAndSet(PENDING, ABANDONED)) {
                            container.release().doFinally(signal -> settle.run()).subscribe(done -> {},
                                    failure -> log.warn("could not release container {} of a cancelled run", key,
                                            failure));
                        }
                    }))
                    .cast(Container.class);
        });
    }

    /** Completes once no run of {@code namespace/id} is in flight or being undone. */
    Mono<Void> settled(String namespace, String id) {
        return Mono.defer(() -> inFlight.getOrDefault(namespace + "/" + id, Mono.empty()));
    }

    private Mono<LinuxContainer> steps(RunRequest request) {
        return Mono.fromCallable(() -> rootfs(request))
                .subscribeOn(io)
                .flatMap(root -> {
                    Spec spec = request.spec().toBuilder().rootPath(root.toString()).build();
                    return runtime.create(request.namespace(), request.id(), spec)
                            .flatMap(bundle -> new LinuxContainer(runtime, bundle, spec, request.outputBuffer())
                                    .launch(request.shim(), request.runcOptions(), request.stdin()));
                });
    }

    /**
     * The rootfs directory as runc will use it, in place: its real path, so that a symbolic link changed after the
     * run cannot move the container's root.
     */
    private static Path rootfs(RunRequest request) {
        try {
            Path real = request.rootfs().toRealPath();
            if (Files.isDirectory(real)) {
                return real;
            }
        } catch (IOException absent) {
            // Reported below, as for a file that is no directory.
        }
        throw new FailedPreconditionException("run container " + request.namespace() + "/" + request.id()
                + ": rootfs " + request.rootfs() + " is not a directory");
    }
}
