package org.shimmer.runtime.linux.cleanup;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.shimmer.runtime.linux.shim.ShimInvocation;
import org.shimmer.runtime.linux.sys.Procfs;

/**
 * The live processes that belong to one bundle, found by what they are, never by a pid file alone (a recorded pid
 * may since belong to anyone):
 * <ul>
 *   <li>the remote shim ({@code start}, the daemon, {@code delete}) runs with the bundle as its working directory
 *       and {@code -namespace NS … -id ID} on its command line;</li>
 *   <li>{@code runc create} names the bundle after {@code --bundle};</li>
 *   <li>a container's {@code runc init} starts in the bundle's {@code rootfs} and, until it runs the user's
 *       program, carries runc's state directory in {@code _LIBCONTAINER_STATEDIR}: a create killed at that point
 *       leaves it blocked forever with no {@code state.json} for runc to find it by.</li>
 * </ul>
 * Zombies are not live. Reads {@code /proc}; blocking.
 */
final class BundleProcesses {

    /**
     * One process and what it was recognised as.
     *
     * @param shimDaemon the remote shim's daemon (not its {@code start} or {@code delete} command)
     * @param containerInit a container's {@code runc init}
     */
    record Found(int pid, boolean shimDaemon, boolean containerInit) {

        /**
         * A shim daemon or a container init: forked by the shim or by runc, never launched by a JVM (whose
         * launcher's waiter reaps what it started: the JDK's reaper, or a {@code SpawnedProcess} waiter).
         */
        boolean neverSpawnedByJdk() {
            return shimDaemon || containerInit;
        }
    }

    /** {@code init} as an argument of its own after the program (runc's {@code argv[1]}), NULs around it. */
    private static final byte[] INIT = "\0init\0".getBytes(StandardCharsets.US_ASCII);

    private final String namespace;
    private final String id;
    private final Path bundleDir;
    private final String runcStateDir;
    private final byte[] idBytes;

    BundleProcesses(String namespace, String id, Path bundleDir, Path runcStateDir) {
        this.namespace = namespace;
        this.id = id;
        this.idBytes = id.getBytes(StandardCharsets.UTF_8);
        this.bundleDir = bundleDir;
        this.runcStateDir = runcStateDir.toString();
    }

    /**
     * Every live process of the bundle, other than this JVM, from a scan of {@code /proc} that began after this call
     * (shared with the bundles that ask at the same time: {@link ProcessScans}).
     */
    List<Found> scan() throws IOException {
        return ProcessScans.scan(this);
    }

    /**
     * Whether a process whose command line begins with {@code length} bytes of {@code commandLine} (negative: longer
     * than the buffer) may be one of ours: every match needs the id (an argument of its own, or the end of the
     * bundle's path) or {@code init} as an argument, and most processes have neither. Reading and decoding each
     * whole command line dominated the scan of every delete (and an init system's {@code --firecracker-init}
     * was read again by every scan).
     */
    boolean mayMatch(byte[] commandLine, int length) {
        return length < 0 || contains(commandLine, length, idBytes) || contains(commandLine, length, INIT);
    }

    /** What {@code pid} is to this bundle, read now; empty if it is not one of its live processes. */
    Optional<Found> recognise(int pid) {
        try {
            // The command line first, read once, and the state only of a match: a delete scans every process,
            // and reading stat and cmdline twice of each took about 20 ms per delete here with 90 processes
            // (every delete of 100 at once scanned hundreds). A zombie's command line is empty: it never matches.
            List<String> argv = Procfs.argv(pid);
            return match(pid, argv).filter(found -> Procfs.isLive(pid));
        } catch (IOException | RuntimeException gone) {
            // It exited while we looked, or is a kernel thread with nothing to read: not ours.
            return Optional.empty();
        }
    }

    private Optional<Found> match(int pid, List<String> argv) throws IOException {
        Optional<ShimInvocation.Kind> shim = ShimInvocation.of(pid, argv, namespace, id, bundleDir);
        if (shim.isPresent()) {
            return Optional.of(new Found(pid, shim.get() == ShimInvocation.Kind.DAEMON, false));
        }
        if (ShimInvocation.follows(argv, "--bundle", bundleDir.toString())
                || ShimInvocation.follows(argv, "-bundle", bundleDir.toString())) {
            return Optional.of(new Found(pid, false, false));
        }
        if (argv.size() >= 2 && argv.get(1).equals("init")
                && (Procfs.inDirectory(pid, bundleDir.resolve("rootfs"))
                        || Procfs.hasEnvironment(pid, "_LIBCONTAINER_STATEDIR=" + runcStateDir))) {
            return Optional.of(new Found(pid, false, true));
        }
        return Optional.empty();
    }

    @Override
    public String toString() {
        return "bundle " + namespace + "/" + id;
    }

    private static boolean contains(byte[] haystack, int length, byte[] needle) {
        for (int i = 0; i + needle.length <= length; i++) {
            if (Arrays.equals(haystack, i, i + needle.length, needle, 0, needle.length)) {
                return true;
            }
        }
        return false;
    }
}
