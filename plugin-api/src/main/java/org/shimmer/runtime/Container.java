package org.shimmer.runtime;

import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.shim.ContainerStats;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ShimException;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TerminalSize;
import org.shimmer.runtime.spec.Spec;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * A running container from {@link RuntimePlugin#run}: its bundle, its shim and its task, with the cleanup of all
 * three in {@link #release()}. Meant for {@code Mono.usingWhen}, which releases it however the work ends
 * (completion, error or cancel):
 *
 * <pre>{@code
 * Mono<ExitStatus> exit = Mono.usingWhen(runtime.run(request), Container::exit, Container::release);
 * }</pre>
 *
 * <p><b>Output.</b> The plugin reads {@link #stdout()} and {@link #stderr()} continuously, whether anybody
 * subscribed or not, so an ignored stream never stalls the process. Bytes nobody asked for yet wait in a buffer of
 * {@link RunRequest#withOutputBuffer} bytes per stream; when it is full the oldest bytes are dropped and counted
 * ({@link #droppedStdoutBytes()}): the buffer never holds more, whatever subscribers do, so a subscriber that
 * falls more than the bound behind loses the oldest bytes too. A subscriber that keeps requesting gets every byte,
 * in order, while it stays within the bound, from the first byte the process wrote if it subscribes before
 * anything was dropped; a chunk that comes while it waits for one is handed to it whole, whatever the bound (so a
 * bound of 0 keeps nothing for nobody, yet gives a waiting subscriber what comes). Subscribers are called on a
 * bounded set of threads kept for them, never on the threads that read the streams or run the runtime's own work:
 * one that blocks in {@code onNext} holds one of those
 * threads and delays no exec, stats, kill or release of any container, but once all of them are held, other
 * streams' output waits for one to return. One whose {@code onNext} throws gets that error and frees the stream
 * for the next. One subscriber per stream at a time; a
 * second one while the first is subscribed gets {@link FailedPreconditionException}. Cancelling a subscription
 * (a {@code take(1)}) never touches the container: it keeps running and writing, and a later subscription gets
 * what was buffered since and what follows. A stream completes once the process and everything holding it closed
 * it and the buffer was read. {@link #exit()} never waits for output nobody reads.
 */
public interface Container {

    String namespace();

    String id();

    /** The container's bundle; {@link #release()} deletes it. */
    Bundle bundle();

    /** The container's shim client; {@link #release()} deletes its task and shuts it down. */
    ShimClient shim();

    /**
     * The spec the container was created from, as written to its bundle: its root path is {@code rootfs}, relative
     * to the bundle (the overlay mounted there), and {@code terminal} is whether it has one.
     */
    Spec spec();

    /** The host pid of the container's init process. */
    int pid();

    /**
     * The init process's standard output; see "Output" above. With a terminal ({@link RunRequest#withTerminal}) it
     * carries everything the process writes to the terminal, and {@link #stderr()} is empty.
     */
    Flux<byte[]> stdout();

    /** The init process's standard error; see "Output" above. */
    Flux<byte[]> stderr();

    /** Bytes of stdout dropped so far because nobody read them and the buffer was full. */
    long droppedStdoutBytes();

    /** Bytes of stderr dropped so far because nobody read them and the buffer was full. */
    long droppedStderrBytes();

    /**
     * The init process's exit: every subscriber, before or after it, gets it (128 + n for signal n). Fails with the
     * shim's error when the exit cannot be known (the shim died: {@link UnavailableException} or
     * {@link ShimException}).
     */
    Mono<ExitStatus> exit();

    /**
     * Runs {@code process} in the container as exec {@code execId}, its stdin none and its output read as the
     * container's; completes once it started. Its {@link ExecProcess#exit()} comes after the shim was asked to
     * delete the exec: the id can be used again then, unless that delete failed.
     *
     * <p>{@code process} is used as it is: one from {@link Spec.Process#builder()} runs as root with the default
     * capabilities, whatever user and capabilities the container's process has. To run as the container does, use
     * {@link #exec(String, String...)}, or start from {@code spec().process().toBuilder()}.
     *
     * @param execId a valid {@linkplain Identifiers identifier}, unique among the container's live execs
     */
    Mono<ExecProcess> exec(String execId, Spec.Process process);

    /**
     * {@link #exec(String, Spec.Process)} with the process's stdio chosen: {@link Stdio#streams} (its stdin fed from
     * the publisher) or {@link Stdio#terminal} (a pseudo-terminal, whose output is {@link ExecProcess#stdout()};
     * {@code process.terminal} is set to match). Other kinds are refused with {@link InvalidSpecException}: the
     * output of an exec is always read into its buffers.
     */
    Mono<ExecProcess> exec(String execId, Spec.Process process, Stdio stdio);

    /**
     * Runs {@code args} as {@code ctr task exec} does: the container's own process (user, groups, environment,
     * working directory, capabilities, rlimits, no new privileges) with these arguments; see
     * {@link #exec(String, Spec.Process)}.
     */
    default Mono<ExecProcess> exec(String execId, String... args) {
        return Mono.defer(() -> exec(execId, spec().process().toBuilder().args(args).build()));
    }

    /** Sends {@code signal} to the init process. */
    Mono<Void> kill(int signal);

    /**
     * Changes the size of the init process's terminal ({@link RunRequest#withTerminal}); see
     * {@link ShimClient#resize}.
     */
    Mono<Void> resize(TerminalSize size);

    /** The container's resource usage, as {@link ShimClient#stats()} gives it. */
    Mono<ContainerStats> stats();

    /**
     * The events of this container's task, from subscription on, until its {@link #release()}: the flux completes
     * once the release ended and the init's {@code /tasks/delete} was delivered, its last envelope. A remote shim
     * forwards that event on its own time: if it has not reached the runtime 2 s after the release ended, the flux
     * completes without it; a subscriber that is behind, the event already in its backlog, still gets it. A
     * subscription made after the release ended completes at once (the exchange's later
     * events of this namespace and id are another container's). Without a release it never completes, but with the
     * runtime's stop.
     */
    Flux<Envelope> events();

    /**
     * Kills the container if it still runs (SIGKILL to every process of it, at once: for a graceful stop, send
     * {@link #kill} SIGTERM and wait for {@link #exit()} with your own timeout first), waits for its exit, deletes
     * the task, shuts the shim down and deletes the bundle. Runs to its end even when its subscriber cancels.
     * Idempotent: every call, concurrent or later, shares the one release and completes when it is done.
     *
     * <p>Safe after any failure: a shim that died, a task already deleted, a bundle already gone. Each call to the
     * shim is bounded (10 s): a hung remote shim (stopped) is killed, a hung runc left to the delete by force.
     * When a step fails and leaves something, the release falls back to {@link RuntimePlugin#forceDelete}; if even
     * that leaves something, it fails with the {@link ShimmerException} naming what still lives (with its code), and
     * {@code forceDelete(namespace, id)} is the way to retry.
     *
     * <p>Once it succeeded, {@link #kill}, {@link #exec}, {@link #resize} and {@link #stats()} are refused with
     * {@link NotFoundException} naming the operation and the container ("it was released"), whichever the shim;
     * {@link #exit()} still gives the exit, and {@link #events()} completes. One of them that fails while the
     * release runs lost the race to it, and fails the same way ("it is being released"), the shim's error its cause.
     */
    Mono<Void> release();
}
