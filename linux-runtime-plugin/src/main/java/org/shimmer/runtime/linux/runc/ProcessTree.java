package org.shimmer.runtime.linux.runc;

import java.io.IOException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Kills a command we started and every process it forked, and reaps each one that becomes the JVM's child.
 *
 * <p>Why not a kill of the command alone, or of its process group: {@code runc create} makes itself a child
 * subreaper, so its {@code runc init} (and any hook) stays its descendant while it lives, but that init calls
 * {@code setsid}, out of runc's process group. Killing runc first re-parents them, to the JVM once it is a
 * subreaper, where nothing reaps a namespace init: a zombie for good, or an init blocked on its FIFO for good.
 *
 * <p>So: the command is stopped first (it forks no more); its descendants are pinned by pidfd and killed while it
 * still holds them, pass after pass, since a killed process's children re-parent to it and show up in the next
 * pass; then the command is killed and reaped (by its waiter), and every pinned process that became our child is reaped
 * through its pidfd (never by pid: the number may be someone else's by then).
 */
final class ProcessTree {

    private static final Logger log = LoggerFactory.getLogger(ProcessTree.class);
    private static final int SIGKILL = 9;
    private static final int SIGSTOP = 19;
    private static final int WSTOPPED = 2;

    private ProcessTree() {}

    /** Kills {@code root}'s tree and reaps it; blocking, at most about {@code timeout}. Idempotent. */
    static void destroy(Process root, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        Map<Long, OwnedFd> pinned = new LinkedHashMap<>();
        OwnedFd rootFd = pin(root.pid());
        // Still alive once pinned: the pidfd names our child, not a process that got its pid after the JDK reaped
        // it. Gone already: it ended on its own, and what it left (a created container's init) is not ours to kill.
        if (rootFd != null && !root.isAlive()) {
            rootFd.close();
            rootFd = null;
        }
        try {
            if (rootFd != null && signal(rootFd, SIGSTOP)) {
                awaitStopped(rootFd);
                killDescendants(root, pinned, deadline);
                signal(rootFd, SIGKILL);
            }
            awaitExit(root, deadline);
            for (Map.Entry<Long, OwnedFd> entry : pinned.entrySet()) {
                reapIfOurs(entry.getKey(), entry.getValue(), deadline);
            }
        } finally {
            if (rootFd != null) {
                rootFd.close();
            }
            pinned.values().forEach(OwnedFd::close);
        }
    }

    private static void killDescendants(Process root, Map<Long, OwnedFd> pinned, long deadline) {
        boolean found = true;
        while (found && System.nanoTime() < deadline) {
            found = false;
            for (ProcessHandle descendant : root.descendants().toList()) {
                if (pinned.containsKey(descendant.pid())) {
                    continue;
                }
                OwnedFd pidfd = pin(descendant.pid());
                if (pidfd != null) {
                    pinned.put(descendant.pid(), pidfd);
                    signal(pidfd, SIGKILL);
                    found = true;
                }
            }
            // Only once they have exited are their own children re-parented to the root, for the next pass.
            for (OwnedFd pidfd : pinned.values()) {
                awaitReadable(pidfd, deadline);
            }
        }
    }

    private static OwnedFd pin(long pid) {
        try {
            return OwnedFd.pidfd((int) pid);
        } catch (IOException gone) {
            return null;
        }
    }

    private static boolean signal(OwnedFd pidfd, int signal) {
        try {
            pidfd.use(number -> {
                LinuxCalls.pidfdSendSignal(number, signal);
                return null;
            });
            return true;
        } catch (IOException gone) {
            return false;
        }
    }

    /** Blocks until the root has stopped or exited; reported without being consumed, the JDK still reaps it. */
    private static void awaitStopped(OwnedFd rootFd) {
        try {
            rootFd.use(number -> LinuxCalls.waitPidfd(number, WSTOPPED | LinuxCalls.WEXITED | LinuxCalls.WNOWAIT));
        } catch (IOException reaped) {
            log.trace("{} was reaped before it stopped", rootFd, reaped);
        }
    }

    private static void awaitReadable(OwnedFd pidfd, long deadline) {
        try {
            if (!pidfd.awaitReadable(remaining(deadline))) {
                log.warn("{} did not exit after SIGKILL in time", pidfd);
            }
        } catch (IOException e) {
            log.debug("could not wait for {}", pidfd, e);
        }
    }

    private static void awaitExit(Process root, long deadline) {
        try {
            // waitFor, not onExit: a spawned runc has no JDK reaper; its wait reaps it.
            if (!root.waitFor(remaining(deadline).toNanos(), TimeUnit.NANOSECONDS)) {
                log.warn("pid {} did not exit after SIGKILL in time", root.pid());
                // Its end is reaped whenever it comes (a spawned child has no JDK reaper to do it).
                root.destroyForcibly();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Reaps a process that became our child when its parent died; one that did not is its new parent's. */
    private static void reapIfOurs(long pid, OwnedFd pidfd, long deadline) {
        awaitReadable(pidfd, deadline);
        try {
            pidfd.use(number -> LinuxCalls.waitPidfd(number, LinuxCalls.WEXITED | LinuxCalls.WNOHANG));
        } catch (IOException notOurs) {
            log.trace("pid {} is not ours to reap", pid, notOurs);
        }
    }

    private static Duration remaining(long deadline) {
        return Duration.ofNanos(Math.max(0, deadline - System.nanoTime()));
    }
}
