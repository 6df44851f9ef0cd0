package org.shimmer.runtime.linux.shim.remote;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.shimmer.runtime.Bundle;

/**
 * Whether a bundle's shim process still runs, when its socket does not answer. The runc shim (1.6) records no pid
 * of its own, so it is found in {@code /proc}: the daemon runs in the bundle directory, with {@code -namespace} and
 * {@code -id} naming the bundle, and without the {@code start}/{@code delete} action its short-lived invocations
 * carry. A shim is dead only when its process is gone: cleaning up after a live one would kill its container and
 * leave the shim running (issue 9).
 */
final class ShimProcess {

    private ShimProcess() {}

    /** Whether a shim daemon of {@code bundle} runs; blocking. */
    static boolean alive(Bundle bundle) {
        try (DirectoryStream<Path> processes = Files.newDirectoryStream(Path.of("/proc"),
                entry -> entry.getFileName().toString().chars().allMatch(Character::isDigit))) {
            for (Path process : processes) {
                if (isShimOf(process, bundle)) {
                    return true;
                }
            }
            return false;
        } catch (IOException unreadable) {
            // Unknown is alive: cleaning up after a live shim kills its container.
            return true;
        }
    }

    private static boolean isShimOf(Path process, Bundle bundle) {
        try {
            byte[] raw = Files.readAllBytes(process.resolve("cmdline"));
            List<String> args = List.of(new String(raw, StandardCharsets.UTF_8).split("\0"));
            return follows(args, "-namespace", bundle.namespace()) && follows(args, "-id", bundle.id())
                    && !args.getLast().equals("start") && !args.getLast().equals("delete")
                    // The kernel shows the resolved directory; the bundle path may pass a symlink (/var/run).
                    && Files.isSameFile(process.resolve("cwd"), bundle.path());
        } catch (IOException | RuntimeException gone) {
            return false;
        }
    }

    private static boolean follows(List<String> args, String flag, String value) {
        int at = args.indexOf(flag);
        return at >= 0 && at + 1 < args.size() && args.get(at + 1).equals(value);
    }
}
