package org.shimmer.runtime.linux.shim;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import org.shimmer.runtime.linux.testing.BusyboxBundle;

/**
 * A workload whose resource usage is known: it writes {@link #FILL} bytes into the container's {@code /dev/shm}
 * tmpfs (charged to its memory cgroup), burns some CPU, leaves three sleepers and its shell running, and prints {@link #READY}.
 * The spec sets {@link #MEMORY_LIMIT} and {@link #PIDS_LIMIT}.
 */
public final class StatsWorkload {

    public static final String READY = "ready";
    /** The shell and its three sleepers. */
    public static final long PROCESSES = 4;
    public static final long FILL = 16L << 20;
    public static final long MEMORY_LIMIT = 64L << 20;
    public static final long PIDS_LIMIT = 32;

    private static final ObjectMapper JSON = new ObjectMapper();

    private StatsWorkload() {}

    public static byte[] spec(Path scratch) throws Exception {
        // The second dd only burns CPU (a GiB from /dev/zero, ~0.1 s): cgroup v1 splits user and system time in
        // 10 ms ticks, and the fill alone took less than one on a fast machine (CI saw user + system 0).
        String script = "/bin/busybox dd if=/dev/zero of=/dev/shm/fill bs=1048576 count=" + (FILL >> 20)
                + " 2>/dev/null; /bin/busybox dd if=/dev/zero of=/dev/null bs=1048576 count=1024 2>/dev/null; "
                + "sleep 60 & sleep 60 & sleep 60 & echo " + READY + "; wait";
        ObjectNode spec = (ObjectNode) JSON.readTree(BusyboxBundle.spec(scratch, "/bin/sh", "-c", script));
        ObjectNode resources = (ObjectNode) spec.path("linux").path("resources");
        resources.putObject("memory").put("limit", MEMORY_LIMIT);
        resources.putObject("pids").put("limit", PIDS_LIMIT);
        return JSON.writeValueAsBytes(spec);
    }
}
