package org.shimmer.runtime.linux.runc;

import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import reactor.core.publisher.Mono;
import reactor.core.publisher.MonoSink;
import reactor.core.scheduler.Scheduler;

/**
 * One run of a runc command, from start to exit, as a cold {@code Mono}. The process is the resource: a cancel at
 * any moment either prevents the start or kills runc with everything it forked and reaps it ({@link ProcessTree});
 * so does a failure to see it end. Issue 10: a cancelled {@code runc create} was left running, and killing only
 * runc would have left its {@code runc init} behind.
 *
 * <p>A command whose stdout is not a pipe holds no thread while it runs: {@code io} launches it, the JDK's process
 * reaper tells its exit ({@link Process#onExit()}) and {@code io} takes the result. Issue 14: each command held one
 * of the io scheduler's threads from launch to exit, so at most that many {@code runc create} of 100 containers
 * ran at once, and every other file operation queued behind them.
 *
 * <p>A command that prints to a pipe is read to its end on an io thread, which is never interrupted: a pipe read
 * does not wake for an interrupt, and a kill from an interrupted thread could not wait for the exits it must reap.
 * Cancelling kills on the io scheduler instead, which ends the read and the wait.
 */
final class RuncInvocation {

    /** How long killing a cancelled command's tree may take. */
    static final Duration KILL_TIMEOUT = Duration.ofSeconds(10);

    /** How the command ended: its exit status and what it printed, when its stdout was a pipe. */
    record Result(int exit, byte[] printed) {}

    private final Callable<Process> start;
    private final boolean piped;
    private final Scheduler io;
    private final RuncCommandEvent event;
    private final AtomicReference<Process> process = new AtomicReference<>();
    private final AtomicBoolean cancelled = new AtomicBoolean();
    private final AtomicBoolean killed = new AtomicBoolean();

    private RuncInvocation(Callable<Process> start, boolean piped, Scheduler io, RuncCommandEvent event) {
        this.start = start;
        this.piped = piped;
        this.io = io;
        this.event = event;
    }

    /**
     * Starts the process {@code start} makes, on {@code io}, at subscription; completes once it has exited. A
     * {@link RuncCommandEvent} for {@code command} on {@code container} spans it, launch to reaped exit. {@code
     * piped}: its stdout is a pipe, read to its end into {@link Result#printed()} (empty otherwise).
     */
    static Mono<Result> run(String command, String container, Callable<Process> start, boolean piped,
            Scheduler io) {
        return Mono.create(sink -> {
            RuncInvocation invocation =
                    new RuncInvocation(start, piped, io, new RuncCommandEvent(command, false, container));
            sink.onCancel(invocation::cancel);
            try {
                io.schedule(() -> invocation.execute(sink));
            } catch (RejectedExecutionException e) {
                sink.error(e);
            }
        });
    }

    private void execute(MonoSink<Result> sink) {
        if (cancelled.get()) {
            return;
        }
        Process started;
        event.begin();
        try {
            started = start.call();
        } catch (Exception e) {
            if (!cancelled.get()) {
                sink.error(e);
            }
            return;
        }
        process.set(started);
        // Set, then checked, while cancel sets, then checks: whichever runs second sees the other, so a cancel that
        // races the start still kills (no lock: a cancel may come from an event loop).
        if (cancelled.get()) {
            kill();
            return;
        }
        if (!piped) {
            started.onExit().whenComplete((exited, error) -> complete(sink, exited, error));
            return;
        }
        try (InputStream out = started.getInputStream()) {
            byte[] printed = out.readAllBytes();
            int exit = started.waitFor();
            event.commit();
            sink.success(new Result(exit, printed));
        } catch (IOException | InterruptedException e) {
            // The scheduler is shutting down (an interrupt), or the pipe failed: runc must not outlive the call.
            kill();
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            if (!cancelled.get()) {
                sink.error(e);
            }
        }
    }

    /**
     * Runs on the JDK's reaper thread once runc is reaped; hands the result to {@code io}, so the caller's code
     * (which reads runc's log on failure) never runs on the reaper.
     */
    private void complete(MonoSink<Result> sink, Process exited, Throwable error) {
        event.commit();
        if (cancelled.get()) {
            return;
        }
        try {
            io.schedule(() -> {
                if (error != null) {
                    sink.error(error);
                } else {
                    sink.success(new Result(exited.exitValue(), new byte[0]));
                }
            });
        } catch (RejectedExecutionException stopping) {
            sink.error(stopping);
        }
    }

    private void cancel() {
        cancelled.set(true);
        if (process.get() != null) {
            try {
                io.schedule(this::kill);
            } catch (RejectedExecutionException stopping) {
                // The runtime is stopping: kill here rather than not at all.
                kill();
            }
        }
    }

    private void kill() {
        Process started = process.get();
        if (started != null && killed.compareAndSet(false, true)) {
            ProcessTree.destroy(started, KILL_TIMEOUT);
        }
    }
}
