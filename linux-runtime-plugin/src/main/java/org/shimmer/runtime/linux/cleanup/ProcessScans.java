package org.shimmer.runtime.linux.cleanup;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.Procfs;

/**
 * Scans of {@code /proc} shared by the bundles that ask at the same time: one scan reads each process's command
 * line once and matches it against every bundle waiting for it. A request is served only by a scan that began
 * after it was made, so it sees every process that lived when it asked. One scan runs at a time (per class
 * loader); the thread of the first request waiting when none runs does it, for all of them. In a burst of deletes
 * each delete read every process's command line again: 100 at once meant hundreds of processes read 100 times, on
 * two cores shared with the containers starting. Blocking.
 */
final class ProcessScans {

    /** Room for most command lines; a longer one is read whole. */
    static final int CMDLINE_BUFFER = 4096;

    private static final Object LOCK = new Object();
    /** Requests that no scan has begun for yet; guarded by {@link #LOCK}. */
    private static List<Request> waiting = new ArrayList<>();
    /** Whether a scan runs now; guarded by {@link #LOCK}. */
    private static boolean scanning;

    /** One bundle's wait for a scan; its fields are written by the scanning thread before {@code done}. */
    private static final class Request {
        final BundleProcesses bundle;
        final List<BundleProcesses.Found> found = new ArrayList<>();
        Throwable failure;
        boolean done;

        Request(BundleProcesses bundle) {
            this.bundle = bundle;
        }
    }

    private ProcessScans() {}

    /** Every live process of {@code bundle}, other than this JVM, from a scan that began after this call. */
    static List<BundleProcesses.Found> scan(BundleProcesses bundle) throws IOException {
        Request mine = new Request(bundle);
        List<Request> batch;
        synchronized (LOCK) {
            waiting.add(mine);
            try {
                while (scanning && !mine.done) {
                    LOCK.wait();
                }
            } catch (InterruptedException e) {
                waiting.remove(mine);
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while waiting to scan the processes of " + bundle);
            }
            if (mine.done) {
                return result(mine);
            }
            scanning = true;
            batch = waiting;
            waiting = new ArrayList<>();
        }
        try {
            run(batch);
        } finally {
            synchronized (LOCK) {
                scanning = false;
                for (Request request : batch) {
                    request.done = true;
                }
                LOCK.notifyAll();
            }
        }
        return result(mine);
    }

    /** What the scan found for {@code request}, or its failure, thrown anew in the requester's thread. */
    private static List<BundleProcesses.Found> result(Request request) throws IOException {
        if (request.failure != null) {
            throw new IOException(request.failure.getMessage() != null ? request.failure.getMessage()
                    : request.failure.toString(), request.failure);
        }
        return request.found;
    }

    /**
     * One pass over {@code /proc} for every request of {@code batch}; a failure is each request's, whatever it is:
     * a scan that ended early must never read as one that found nothing (a delete would go ahead).
     */
    private static void run(List<Request> batch) {
        byte[] buffer = new byte[CMDLINE_BUFFER];
        try (Procfs.CommandLines lines = new Procfs.CommandLines(CMDLINE_BUFFER)) {
            long self = SelfProcess.PID;
            // Read after every request of the batch was made: a process that lived when one asked is not here.
            int[] kernelThreads = Procfs.kernelThreads();
            for (int pid : Procfs.pids()) {
                if (pid == self || Arrays.binarySearch(kernelThreads, pid) >= 0) {
                    continue;
                }
                int length;
                try {
                    length = lines.read(pid, buffer);
                } catch (LinuxCalls.ErrnoException e) {
                    // It exited while we looked: nobody's. Anything else (no descriptor left) fails the scan: an
                    // empty answer would let a delete go ahead over a bundle's live processes (review).
                    if (e.errno() == LinuxCalls.ENOENT || e.errno() == LinuxCalls.ESRCH) {
                        continue;
                    }
                    throw e;
                }
                for (Request request : batch) {
                    if (request.bundle.mayMatch(buffer, length)) {
                        request.bundle.recognise(pid).ifPresent(request.found::add);
                    }
                }
            }
        } catch (Throwable e) {
            for (Request request : batch) {
                request.failure = e;
            }
        }
    }
}
