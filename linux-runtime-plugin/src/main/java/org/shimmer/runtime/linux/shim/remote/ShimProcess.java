package org.shimmer.runtime.linux.shim.remote;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.shimmer.runtime.Bundle;

/**
 * Whether a bundle's shim process still runs, when its socket does not answer. The shim writes its pid to
 * {@code shim.pid} in the bundle at start; the process of that pid is the shim only if its command line names the
 * bundle's namespace and id (a recycled pid runs something else). A shim is dead only when its process is gone:
 * cleaning up after a live one would kill its container and leave the shim running (issue 9).
 */
final class ShimProcess {

    static final String PID_FILE = "shim.pid";

    private ShimProcess() {}

    /** Whether the shim recorded in {@code bundle} runs; blocking. */
    static boolean alive(Bundle bundle) {
        try {
            int pid = Integer.parseInt(Files.readString(bundle.path().resolve(PID_FILE)).strip());
            byte[] raw = Files.readAllBytes(Path.of("/proc", Integer.toString(pid), "cmdline"));
            List<String> args = List.of(new String(raw, StandardCharsets.UTF_8).split("\0"));
            return follows(args, "-namespace", bundle.namespace()) && follows(args, "-id", bundle.id());
        } catch (IOException | NumberFormatException gone) {
            return false;
        }
    }

    private static boolean follows(List<String> args, String flag, String value) {
        int at = args.indexOf(flag);
        return at >= 0 && at + 1 < args.size() && args.get(at + 1).equals(value);
    }
}
