package org.shimmer.runtime.linux.container;

import static org.shimmer.runtime.linux.container.LinuxContainer.EXIT_AFTER_KILL;
import static org.shimmer.runtime.linux.container.LinuxContainer.SIGKILL;

import org.shimmer.runtime.ExecProcess;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TerminalSize;
import org.shimmer.runtime.spec.Spec;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import reactor.core.scheduler.Scheduler;

/**
 * An exec of a {@link LinuxContainer}: made, its output read into bounded buffers, started; deleted by the shim
 * once it exited, so its id is free again when {@link #exit()} completes.
 */
final class LinuxExecProcess implements ExecProcess {

    private final ShimClient shim;
    private final String id;
    private final BoundedOutput stdout;
    private final BoundedOutput stderr;
    private final Sinks.One<ExitStatus> exit = Sinks.one();
    private volatile boolean created;
    private volatile boolean started;
    private volatile int pid;

    /** @param output where the output's subscribers are called */
    LinuxExecProcess(ShimClient shim, String id, String container, int outputBuffer, Scheduler output) {
        this.shim = shim;
        this.id = id;
        this.stdout = new BoundedOutput("stdout of exec " + id + " in container " + container, outputBuffer,
                output);
        this.stderr = new BoundedOutput("stderr of exec " + id + " in container " + container, outputBuffer,
                output);
    }

    /** Makes and starts the exec; on failure what was made is undone before the error is passed on. */
    Mono<LinuxExecProcess> launch(Spec.Process process, Stdio stdio) {
        return shim.exec(id, process, stdio)
                .flatMap(io -> {
                    created = true;
                    stdout.connect(io.stdout());
                    stderr.connect(io.stderr());
                    return shim.start(id);
                })
                .map(startedPid -> {
                    pid = startedPid;
                    started = true;
                    shim.awaitExit(id)
                            .flatMap(status -> shim.delete(id).thenReturn(status).onErrorReturn(status))
                            .subscribe(exit::tryEmitValue, exit::tryEmitError);
                    return this;
                })
                .onErrorResume(failure -> discard()
                        .onErrorResume(undoFailure -> {
                            failure.addSuppressed(undoFailure);
                            return Mono.empty();
                        })
                        .then(Mono.error(failure)));
    }

    /** Undoes an exec nobody will use: killed if started, deleted (the shim kills one never started). */
    Mono<Void> discard() {
        Mono<Void> killed = !started ? Mono.empty() : shim.kill(id, SIGKILL)
                .onErrorResume(gone -> Mono.empty())
                .then(exit.asMono().timeout(EXIT_AFTER_KILL).then())
                .onErrorResume(noExit -> Mono.empty());
        Mono<Void> deleted = !created || started ? Mono.empty() : shim.delete(id).then();
        return killed.then(deleted).doFinally(signal -> {
            stdout.disconnect();
            stderr.disconnect();
        });
    }

    @Override
    public String id() {
        return id;
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
    public Mono<Void> resize(TerminalSize size) {
        return shim.resize(id, size);
    }

    @Override
    public Mono<Void> kill(int signal) {
        return shim.kill(id, signal);
    }
}
