package org.shimmer.runtime.shim;

import java.nio.file.Path;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.spec.Spec;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * The task API of one bundle's shim. Every operation is lazy; {@code execId} names an exec process, and the
 * variants without it address the init process. Errors the shim reports arrive as
 * {@link org.shimmer.runtime.NotFoundException}, {@link org.shimmer.runtime.AlreadyExistsException} or
 * {@link ShimException} with the shim's message.
 */
public interface ShimClient {

    /** The {@code execId} that names the init process. */
    String INIT = "";

    /** The bundle's id, which is the container id. */
    String id();

    /** The bundle's namespace. */
    String namespace();

    /**
     * Creates the init process (runc create); its stdio is set up before, and read as the process writes. A
     * {@link Stdio#terminal} needs a spec whose {@code process.terminal} is true, and any other stdio one where it
     * is false: a mismatch fails with {@link org.shimmer.runtime.InvalidSpecException} before anything runs.
     */
    Mono<ProcessIo> create(CreateOptions options);

    /** Starts the init process; returns its pid. */
    default Mono<Integer> start() {
        return start(INIT);
    }

    /** Starts an exec process created by {@link #exec}; returns its pid. */
    Mono<Integer> start(String execId);

    /** Completes when the init process has exited (at once if it has), with how. Never times out by itself. */
    default Mono<ExitStatus> awaitExit() {
        return awaitExit(INIT);
    }

    /** {@link #awaitExit()} for an exec process. */
    Mono<ExitStatus> awaitExit(String execId);

    /** Sends {@code signal} to the init process, or with {@code all} to every process of the container. */
    Mono<Void> kill(int signal, boolean all);

    /** Sends {@code signal} to an exec process. */
    Mono<Void> kill(String execId, int signal);

    /** Deletes the exited init process; completes after its stdio was fully delivered. */
    default Mono<ExitStatus> delete() {
        return delete(INIT);
    }

    /** Deletes an exited exec process; completes after its stdio was fully delivered. */
    Mono<ExitStatus> delete(String execId);

    /** The init process's state. */
    default Mono<TaskState> state() {
        return state(INIT);
    }

    /** An exec process's state. */
    Mono<TaskState> state(String execId);

    /** The processes of the container. */
    Flux<ProcessInfo> pids();

    /**
     * Creates an exec process in the running container.
     *
     * @param processSpec an OCI runtime-spec {@code Process} as JSON; its {@code terminal} must be true exactly when
     *     {@code stdio} is a {@link Stdio#terminal} ({@link org.shimmer.runtime.InvalidSpecException} otherwise)
     */
    Mono<ProcessIo> exec(String execId, byte[] processSpec, Stdio stdio);

    /**
     * {@link #exec(String, byte[], Stdio)} with {@code process} written as OCI JSON; its {@code args} must not be
     * empty; its {@code terminal} is set to whether {@code stdio} is a {@link Stdio#terminal}. The process is used
     * as it is otherwise: one built from {@link Spec.Process#builder()} runs as root with the default capabilities
     * (as confined as a default container), whatever the container's own process is; start from the container's
     * {@code spec.process().toBuilder()} to inherit its user and capabilities, as {@code ctr task exec} does.
     */
    Mono<ProcessIo> exec(String execId, Spec.Process process, Stdio stdio);

    /**
     * Changes the size of a process's terminal ({@code execId} {@link #INIT} for init), as {@code TIOCSWINSZ} does:
     * the process's foreground group gets {@code SIGWINCH}. Fails with
     * {@link org.shimmer.runtime.FailedPreconditionException} when the process has no terminal (it was not created
     * with {@link Stdio#terminal}) or has exited, and {@link org.shimmer.runtime.NotFoundException} for an unknown
     * exec.
     */
    Mono<Void> resize(String execId, TerminalSize size);

    /** Closes a process's stdin ({@code execId} {@link #INIT} for init). */
    Mono<Void> closeIo(String execId);

    /** Freezes every process of the container. */
    Mono<Void> pause();

    /** Thaws the container. */
    Mono<Void> resume();

    /**
     * Updates the container's resources.
     *
     * @param linuxResources an OCI runtime-spec {@code LinuxResources} as JSON
     */
    Mono<Void> update(byte[] linuxResources);

    /** {@link #update(byte[])} with {@code resources} written as OCI JSON; null limits are left unchanged. */
    Mono<Void> update(Spec.Resources resources);

    /**
     * The container's resource usage: CPU, memory, pids and block I/O decoded from the shim's cgroup metrics
     * (cgroup v1 or v2), with the undecoded form in {@link ContainerStats#raw()}. Fails with a
     * {@link ShimException} if the shim's answer cannot be decoded.
     */
    Mono<ContainerStats> stats();

    /** Checkpoints the container into {@code imagePath} (needs criu). */
    Mono<Void> checkpoint(Path imagePath, boolean exit);

    /** Ends the shim: it exits once no task is left. The client is closed afterwards. */
    Mono<Void> shutdown();

    /** Closes this client without ending the shim; {@link org.shimmer.runtime.shim.ShimOpt#connect()} reattaches. */
    Mono<Void> close();

    /**
     * This shim's events, from subscription on, in the order the shim reported them. The shim retries failed
     * deliveries, so a consumer may see an event twice. Ends with
     * {@link org.shimmer.runtime.UnavailableException} when the runtime stops, as the client's calls do, unless
     * the host gave its own exchange in the config.
     */
    Flux<Envelope> events();
}
