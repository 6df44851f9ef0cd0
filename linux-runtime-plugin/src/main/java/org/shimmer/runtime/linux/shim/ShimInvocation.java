package org.shimmer.runtime.linux.shim;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.shimmer.runtime.linux.sys.Procfs;

/**
 * Recognises a bundle's {@code containerd-shim-runc-v2} processes in {@code /proc}. The runc shim (1.6) records
 * no pid of its own: every invocation (the daemon, and the short-lived {@code start} and {@code delete}) runs with
 * the bundle as its working directory and {@code -namespace NS … -id ID} on its command line; only the daemon has
 * no action word at the end.
 */
public final class ShimInvocation {

    /** What a recognised invocation is. */
    public enum Kind { DAEMON, COMMAND }

    private ShimInvocation() {}

    /** What live process {@code pid} is to the bundle's shim; empty when it is none of its invocations. */
    public static Optional<Kind> of(int pid, String namespace, String id, Path bundleDir) throws IOException {
        return of(pid, Procfs.argv(pid), namespace, id, bundleDir);
    }

    /** As {@link #of(int, String, String, Path)}, with {@code argv} already read from {@code pid}. */
    public static Optional<Kind> of(int pid, List<String> argv, String namespace, String id, Path bundleDir) {
        if (!follows(argv, "-namespace", namespace) || !follows(argv, "-id", id)
                || !Procfs.inDirectory(pid, bundleDir)) {
            return Optional.empty();
        }
        String action = argv.getLast();
        return Optional.of(action.equals("start") || action.equals("delete") ? Kind.COMMAND : Kind.DAEMON);
    }

    /** Whether {@code flag} is followed by {@code value} somewhere on {@code argv}. */
    public static boolean follows(List<String> argv, String flag, String value) {
        for (int i = 0; i + 1 < argv.size(); i++) {
            if (argv.get(i).equals(flag) && argv.get(i + 1).equals(value)) {
                return true;
            }
        }
        return false;
    }
}
