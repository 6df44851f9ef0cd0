package org.shimmer.containerd;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.shimmer.containerd.events.ContainerdEvents;
import org.shimmer.containerd.task.TaskService;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.shim.local.LocalShims;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.shimmer.runtime.linux.ttrpc.TtrpcServer;
import org.shimmer.runtime.linux.ttrpc.TtrpcServerHandle;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one process that serves every task of a namespace for one containerd: started by the binary's {@code start}
 * in a session of its own (it outlives that command and containerd), a child subreaper so container processes stay
 * its children, serving {@link TaskService} on its socket and forwarding task events to containerd.
 *
 * <p>It exits once it had no task and no call for {@link #IDLE_EXIT} (a shutdown of the last task does not end it
 * at once: the next {@code ctr run} would pay a JVM start), and only under the {@code start} lock, after checking
 * that no {@code start} handed out its address meanwhile: a daemon never leaves a task on its way to a dead socket.
 */
final class ShimDaemon {

    /** How long the daemon idles before it exits; {@code SHIMMER_SHIM_IDLE_EXIT} (seconds) in its environment. */
    static final Duration IDLE_EXIT = Duration.ofSeconds(Long.parseLong(
            System.getenv().getOrDefault("SHIMMER_SHIM_IDLE_EXIT", "30")));

    private static final Logger log = LoggerFactory.getLogger(ShimDaemon.class);

    private ShimDaemon() {}

    static int run(ShimFlags flags) throws IOException, InterruptedException {
        String namespace = flags.namespace();
        Path socket = Path.of(flags.required("socket"));
        Path state = Path.of(flags.required("state"));
        DaemonFiles files = new DaemonFiles(state);
        String ttrpcAddress = System.getenv("TTRPC_ADDRESS");
        if (ttrpcAddress == null || ttrpcAddress.isEmpty()) {
            throw new IllegalArgumentException("TTRPC_ADDRESS is not set: containerd names its ttRPC socket there");
        }
        RuntimeResources resources = new RuntimeResources(RuntimeResources.THREAD_PREFIX);
        ContainerdEvents events = null;
        TtrpcServerHandle server = null;
        try {
            resources.exitMonitor().adoptOrphans();
            LocalShims shims = new LocalShims(resources);
            // The daemon's one state root: its exchange is that root's.
            TaskService tasks = new TaskService(namespace, resources, shims, resources.exchange(state));
            events = new ContainerdEvents(resources.exchange(state), namespace,
                    Path.of(ttrpcAddress.replaceFirst("^unix://", "")), resources.loops(), resources.io(),
                    tasks::createIo);
            server = TtrpcServer.create().socket(socket).runOn(resources.loops()).blockingOn(resources.io())
                    .service(tasks.service()).bind().block(Duration.ofSeconds(30));
            files.writePid();
            log.info("serving namespace {} on {} (containerd's events at {})", namespace, socket, ttrpcAddress);
            TtrpcServerHandle serving = server;
            // A stop by a signal (a service manager's SIGTERM) ends as an idle exit does. The socket used to stay in
            // /run/containerd/s, nobody listening.
            Runtime.getRuntime().addShutdownHook(Thread.ofPlatform().unstarted(() -> withdraw(files, serving)));
            idleUntilExit(tasks, files, () -> serving.disposeNow(Duration.ofSeconds(10)));
            return 0;
        } finally {
            if (server != null) {
                server.disposeNow(Duration.ofSeconds(10));
            }
            if (events != null) {
                events.dispose();
            }
            resources.close();
        }
    }

    /**
     * On the JVM's exit (a signal; or a failure after the pid file was written): the pid file withdrawn, then the
     * socket removed, under the lock, so a start that follows finds neither; the socket goes even if the pid file
     * could not. After an idle exit both are done, or the socket is going: it waits for that, not for the lock,
     * which a start may hold until the next daemon serves.
     */
    private static void withdraw(DaemonFiles files, TtrpcServerHandle serving) {
        if (serving.isDisposed() && !publishedAsDaemon(files)) {
            disposeQuietly(serving);
            return;
        }
        OwnedFd lock = null;
        try {
            lock = files.lock();
            files.removePid();
        } catch (IOException | RuntimeException e) {
            log.warn("could not withdraw the pid file", e);
        }
        try {
            disposeQuietly(serving);
            log.info("exiting: pid file and socket withdrawn");
        } finally {
            if (lock != null) {
                lock.close();
            }
        }
    }

    private static boolean publishedAsDaemon(DaemonFiles files) {
        try {
            return files.pid().filter(pid -> pid == ProcessHandle.current().pid()).isPresent();
        } catch (IOException e) {
            return true;
        }
    }

    private static void disposeQuietly(TtrpcServerHandle serving) {
        try {
            serving.disposeNow(Duration.ofSeconds(10));
        } catch (RuntimeException e) {
            log.warn("could not stop serving and remove the socket", e);
        }
    }

    /**
     * Returns once the daemon may exit, with the pid file withdrawn and the socket gone, both under the lock: a
     * {@code start} that follows finds neither, and its new daemon's socket is never removed by this one (review).
     */
    private static void idleUntilExit(TaskService tasks, DaemonFiles files, Runnable stopServing)
            throws IOException, InterruptedException {
        while (true) {
            TimeUnit.SECONDS.sleep(1);
            if (!idle(tasks, files)) {
                continue;
            }
            OwnedFd lock = files.lock();
            try {
                if (idle(tasks, files)) {
                    files.removePid();
                    stopServing.run();
                    log.info("no task for {}: exiting", IDLE_EXIT);
                    return;
                }
            } finally {
                lock.close();
            }
        }
    }

    private static boolean idle(TaskService tasks, DaemonFiles files) throws IOException {
        long idleNanos = IDLE_EXIT.toNanos();
        return tasks.tasks() == 0 && System.nanoTime() - tasks.lastCallNanos() > idleNanos
                && System.currentTimeMillis() - files.lastStart().toMillis() > IDLE_EXIT.toMillis();
    }
}
