package org.shimmer.runtime.linux.runc;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.List;
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
 * <p>The waiting thread is never interrupted: a pipe read does not wake for an interrupt, and a kill from an
 * interrupted thread could not wait for the exits it must reap. Cancelling kills on the io scheduler instead,
 * which ends the read and the wait.
 */
final class RuncInvocation {

    /** How long killing a cancelled command's tree may take. */
    static final Duration KILL_TIMEOUT = Duration.ofSeconds(10);

    /** How the command ended: its exit status and what it printed, when its stdout was a pipe. */
    record Result(int exit, byte[] printed) {}

    private final Callable<Process> start;
    private final RuncCommandEvent event;
    private final AtomicReference<Process> process = new AtomicReference<>();
    private final AtomicBoolean cancelled = new AtomicBoolean();
    private final AtomicBoolean killed = new AtomicBoolean();

    private RuncInvocation(Callable<Process> start, RuncCommandEvent event) {
        this.start = start;
        this.event = event;
    }

    /**
     * Starts the process {@code start} makes, on {@code io}, at subscription; completes once it has exited. A
     * {@link RuncCommandEvent} for {@code command} on {@code container} spans it, launch to reaped exit.
     */
    static Mono<Result> run(String command, String container, Callable<Process> start, Scheduler io) {
        return Mono.create(sink -> {
            RuncInvocation invocation = new RuncInvocation(start, new RuncCommandEvent(command, false, container));
            sink.onCancel(() -> invocation.cancel(io));
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
        } catch (Throwable e) {
            // An Error too (a launcher that failed to initialise): the caller must hear of it, not wait for good.
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
            // Nobody reads them now: a pipe's end must not stay open (the JDK closed it at the exit; we do not).
            closeQuietly(started);
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

    private static void closeQuietly(Process process) {
        for (Closeable stream : List.of(process.getInputStream(), process.getErrorStream())) {
            try {
                stream.close();
            } catch (IOException ignored) {
                // A pipe end: nothing in it is wanted.
            }
        }
    }

    private void cancel(Scheduler io) {
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
