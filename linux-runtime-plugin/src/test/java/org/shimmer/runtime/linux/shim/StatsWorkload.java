package org.shimmer.runtime.linux.shim;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import org.shimmer.runtime.linux.testing.BusyboxBundle;

/**
 * A workload whose resource usage is known: it writes a given number of MiB into the container's {@code /dev/shm}
 * tmpfs (charged to its memory cgroup), leaves three sleepers and its shell running, and prints {@link #READY}.
 * The spec sets a memory limit and a pids limit.
 */
final class StatsWorkload {

    static final String READY = "ready";
    /** The shell and its three sleepers. */
    static final long PROCESSES = 4;

    private static final ObjectMapper JSON = new ObjectMapper();

    private StatsWorkload() {}

    static byte[] spec(Path scratch, long fillBytes, long memoryLimit, long pidsLimit) throws Exception {
        String script = "/bin/busybox dd if=/dev/zero of=/dev/shm/fill bs=1048576 count=" + (fillBytes >> 20)
                + " 2>/dev/null; sleep 60 & sleep 60 & sleep 60 & echo " + READY + "; wait";
        ObjectNode spec = (ObjectNode) JSON.readTree(BusyboxBundle.spec(scratch, "/bin/sh", "-c", script));
        ObjectNode resources = (ObjectNode) spec.path("linux").path("resources");
        resources.putObject("memory").put("limit", memoryLimit);
        resources.putObject("pids").put("limit", pidsLimit);
        return JSON.writeValueAsBytes(spec);
    }
}
