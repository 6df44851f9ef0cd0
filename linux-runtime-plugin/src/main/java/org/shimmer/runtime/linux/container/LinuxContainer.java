package org.shimmer.runtime.linux.container;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import org.reactivestreams.Publisher;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.ExecProcess;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.linux.shim.Operations;
import org.shimmer.runtime.shim.ContainerStats;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.spec.Spec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.Disposable;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import reactor.util.retry.Retry;

/**
 * A container made by {@link ContainerRunner}: its bundle, then its shim, its task and its start, each recorded as
 * it is made, so that {@link #release()} undoes exactly what exists whatever step the run reached.
 */
final class LinuxContainer implements Container {

    private static final Logger log = LoggerFactory.getLogger(LinuxContainer.class);
    private static final int SIGKILL = 9;
    /** How long a release waits for the exit after SIGKILL before it deletes by force. */
    private static final Duration EXIT_AFTER_KILL = Duration.ofSeconds(10);

    private final RuntimePlugin runtime;
    private final Bundle bundle;
    private final Spec spec;
    private final int outputBuffer;
    private final BoundedOutput stdout;
    private final BoundedOutput stderr;
    private final Sinks.One<ExitStatus> exit = Sinks.one();
    private final AtomicReference<Sinks.Empty<Void>> release = new AtomicReference<>();
    private volatile ShimClient shim;
    private volatile boolean created;
    private volatile boolean started;
    private volatile int pid;
    private volatile Disposable exitWatch;

    LinuxContainer(RuntimePlugin runtime, Bundle bundle, Spec spec, int outputBuffer) {
        this.runtime = runtime;
        this.bundle = bundle;
        this.spec = spec;
        this.outputBuffer = outputBuffer;
        this.stdout = new BoundedOutput("stdout of container " + name(), outputBuffer);
        this.stderr = new BoundedOutput("stderr of container " + name(), outputBuffer);
    }

    /**
     * Gets the shim, creates the task with streamed stdio and starts it. On failure everything made so far is
     * released before the error is passed on.
     */
    Mono<LinuxContainer> launch(ShimOpt opt, RuncOptions options, Publisher<byte[]> stdin) {
        return bundle.newShimClient(opt, options)
                .flatMap(client -> {
                    shim = client;
                    return client.create(CreateOptions.of(Stdio.streams(stdin)));
                })
                .flatMap(io -> {
                    created = true;
                    // Read from before the start: nothing the process writes is lost or left to fill a pipe.
                    stdout.connect(io.stdout());
                    stderr.connect(io.stderr());
                    return shim.start();
                })
                .map(startedPid -> {
                    pid = startedPid;
                    started = true;
                    exitWatch = shim.awaitExit().subscribe(exit::tryEmitValue, exit::tryEmitError);
                    return this;
                })
                .onErrorResume(failure -> release()
                        .onErrorResume(releaseFailure -> {
                            failure.addSuppressed(releaseFailure);
                            return Mono.empty();
                        })
                        .then(Mono.error(failure)));
    }

    @Override
    public String namespace() {
        return bundle.namespace();
    }

    @Override
    public String id() {
        return bundle.id();
    }

    @Override
    public Bundle bundle() {
        return bundle;
    }

    @Override
    public Spec spec() {
        return spec;
    }

    @Override
    public ShimClient shim() {
        return shim;
    }

    @Override
    public int pid() {
        return pid;
    }

    @Override
    public Flux<byte[]> stdout() {
        return stdout.flux();
    }

    @Override
    public Flux<byte[]> stderr() {
        return stderr.flux();
    }

    @Override
    public long droppedStdoutBytes() {
        return stdout.droppedBytes();
    }

    @Override
    public long droppedStderrBytes() {
        return stderr.droppedBytes();
    }

    @Override
    public Mono<ExitStatus> exit() {
        return exit.asMono();
    }

    @Override
    public Mono<ExecProcess> exec(String execId, Spec.Process process) {
        return Operations.runToEnd(Mono.defer(() -> {
            LinuxExecProcess exec = new LinuxExecProcess(shim, execId, name(), outputBuffer);
            return exec.launch(process);
        }), LinuxExecProcess::discard).cast(ExecProcess.class);
    }

    @Override
    public Mono<Void> kill(int signal) {
        return shim.kill(signal, false);
    }

    @Override
    public Mono<ContainerStats> stats() {
        return shim.stats();
    }

    @Override
    public Flux<Envelope> events() {
        return shim.events();
    }

    @Override
    public Mono<Void> release() {
        return Mono.defer(() -> {
            Sinks.Empty<Void> mine = Sinks.empty();
            if (release.compareAndSet(null, mine)) {
                // Run to its end whoever cancels: a release half done is the leak it exists to prevent.
                releaseOnce().subscribe(null, mine::tryEmitError, mine::tryEmitEmpty);
            }
            return release.get().asMono();
        });
    }

    /**
     * Undoes what exists, in reverse: kill and wait for the exit, delete the task, shut the shim down, delete the
     * bundle. A step that fails does not stop the next ones; only the bundle's delete decides, as it refuses while
     * anything of the container lives. When it refuses, {@link RuntimePlugin#forceDelete} removes what is left.
     */
    private Mono<Void> releaseOnce() {
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        ShimClient client = shim;
        Mono<Void> task = Mono.empty();
        if (client != null && created) {
            if (started) {
                task = client.kill(SIGKILL, true)
                        .onErrorResume(gone -> Mono.empty())
                        .then(exit.asMono().timeout(EXIT_AFTER_KILL).then())
                        .onErrorResume(noExit -> {
                            failures.add(noExit);
                            return Mono.empty();
                        });
            }
            task = task.then(client.delete().then()
                    .onErrorResume(NotFoundException.class, gone -> Mono.empty())
                    .onErrorResume(failure -> {
                        failures.add(failure);
                        return Mono.empty();
                    }));
        }
        Mono<Void> shimDown = client == null ? Mono.empty() : client.shutdown()
                .onErrorResume(failure -> {
                    failures.add(failure);
                    return Mono.empty();
                });
        return task.then(shimDown)
                // A shim that died is cleaned up by its session (the shim's own delete, then init reaped): wait
                // for that while the bundle is in use, as deleting by force meanwhile killed that delete and left
                // init a zombie of this JVM.
                .then(Mono.defer(bundle::delete).retryWhen(Retry.backoff(6, Duration.ofMillis(100))
                        .maxBackoff(Duration.ofSeconds(1))
                        .filter(FailedPreconditionException.class::isInstance)
                        .onRetryExhaustedThrow((spec, signal) -> signal.failure())))
                .onErrorResume(refused -> {
                    failures.add(refused);
                    log.warn("release of container {} left something ({}); deleting by force", name(),
                            failures.stream().map(Throwable::getMessage).toList());
                    return runtime.forceDelete(namespace(), id())
                            .onErrorMap(left -> cannotRelease(left, failures));
                })
                .doFinally(signal -> {
                    Disposable watch = exitWatch;
                    if (watch != null) {
                        watch.dispose();
                    }
                    exit.tryEmitError(new UnavailableException("container " + name() + " was released before "
                            + "its exit was known"));
                    stdout.disconnect();
                    stderr.disconnect();
                });
    }

    private ShimmerException cannotRelease(Throwable left, List<Throwable> failures) {
        String message = "release container " + name() + " left something: " + left.getMessage()
                + "; RuntimePlugin.forceDelete(\"" + namespace() + "\", \"" + id() + "\") retries";
        ShimmerException named = left instanceof FailedPreconditionException
                ? new FailedPreconditionException(message, left) : new UnavailableException(message, left);
        failures.forEach(named::addSuppressed);
        return named;
    }

    private String name() {
        return bundle.namespace() + "/" + bundle.id();
    }
}
