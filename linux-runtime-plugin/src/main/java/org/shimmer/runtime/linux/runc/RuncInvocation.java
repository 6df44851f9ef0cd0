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
import java.util.function.Function;
import org.shimmer.runtime.UnavailableException;
import reactor.core.Disposable;
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
 *
 * <p>A command run with a {@code cutByStop} is killed the same way when the runtime stops, and fails with
 * {@link UnavailableException}: a stop does not wait for a {@code runc create} whose hook takes its time.
 */
final class RuncInvocation {

    /** How long killing a cancelled command's tree may take. */
    static final Duration KILL_TIMEOUT = Duration.ofSeconds(10);

    /** How the command ended: its exit status and what it printed, when its stdout was a pipe. */
    record Result(int exit, byte[] printed) {}

    /** A cut that is never run: the stop waits for the command. */
    static final Function<Runnable, Disposable> NEVER_CUT = cut -> () -> { };

    private final Callable<Process> start;
    private final RuncCommandEvent event;
    private final String command;
    private final String container;
    private final Function<Runnable, Disposable> cutByStop;
    private final AtomicReference<Process> process = new AtomicReference<>();
    private final AtomicBoolean cancelled = new AtomicBoolean();
    private final AtomicBoolean stopped = new AtomicBoolean();
    private final AtomicBoolean killed = new AtomicBoolean();

    private RuncInvocation(String command, String container, Callable<Process> start,
            Function<Runnable, Disposable> cutByStop) {
        this.start = start;
        this.event = new RuncCommandEvent(command, false, container);
        this.command = command;
        this.container = container;
        this.cutByStop = cutByStop;
    }

    /**
     * Starts the process {@code start} makes, on {@code io}, at subscription; completes once it has exited. A
     * {@link RuncCommandEvent} for {@code command} on {@code container} spans it, launch to reaped exit.
     */
    static Mono<Result> run(String command, String container, Callable<Process> start, Scheduler io) {
        return run(command, container, start, io, NEVER_CUT);
    }

    /**
     * {@link #run(String, String, Callable, Scheduler)}, killed with its tree when the runtime stops: from launch to
     * exit the command is given to {@code cutByStop} (the runtime's {@code RuntimeResources::cutByStop}), which runs
     * the kill when the stop begins to wait for the io scheduler's tasks. It then fails with
     * {@link UnavailableException}, as it would not start once the stop began.
     */
    static Mono<Result> run(String command, String container, Callable<Process> start, Scheduler io,
            Function<Runnable, Disposable> cutByStop) {
        return Mono.create(sink -> {
            RuncInvocation invocation = new RuncInvocation(command, container, start, cutByStop);
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
        // Given before the start, withdrawn after the exit: a stop in between kills, one before prevents the start.
        Disposable cut = cutByStop.apply(this::stop);
        try {
            launchAndWait(sink);
        } finally {
            cut.dispose();
        }
    }

    private void launchAndWait(MonoSink<Result> sink) {
        if (stopped.get()) {
            sink.error(new UnavailableException(stoppedMessage(command, container)));
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
        // Set, then checked, while cancel and stop set, then check: whichever runs second sees the other, so a cancel
        // or a stop that races the start still kills (no lock: a cancel may come from an event loop).
        if (cancelled.get() || stopped.get()) {
            kill();
            // Nobody reads them now: a pipe's end must not stay open (the JDK closed it at the exit; we do not).
            closeQuietly(started);
            failIfStopped(sink);
            return;
        }
        try (InputStream out = started.getInputStream()) {
            byte[] printed = out.readAllBytes();
            int exit = started.waitFor();
            // Killed by the stop: its exit status (or what it logged as it died) is not why it failed.
            if (!failIfStopped(sink)) {
                event.commit();
                sink.success(new Result(exit, printed));
            }
        } catch (IOException | InterruptedException e) {
            // The scheduler is shutting down (an interrupt), or the pipe failed: runc must not outlive the call.
            kill();
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            if (!failIfStopped(sink) && !cancelled.get()) {
                sink.error(e);
            }
        }
    }

    /** What a command the stop did not wait for is told, naming it. */
    private static String stoppedMessage(String command, String container) {
        return "runc " + command + " of " + container + " was ended: the runtime stopped";
    }

    /** Fails {@code sink} as cut by the stop, unless it was not or its caller cancelled; whether it was. */
    private boolean failIfStopped(MonoSink<Result> sink) {
        if (!stopped.get()) {
            return false;
        }
        if (!cancelled.get()) {
            sink.error(new UnavailableException(stoppedMessage(command, container)));
        }
        return true;
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

    /** The runtime stops: kills the command if it runs, or keeps it from starting (on the stopping thread). */
    private void stop() {
        stopped.set(true);
        if (process.get() != null) {
            kill();
        }
    }

    private void kill() {
        Process started = process.get();
        if (started != null && killed.compareAndSet(false, true)) {
            ProcessTree.destroy(started, KILL_TIMEOUT);
        }
    }
}
