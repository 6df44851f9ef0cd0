package org.shimmer.runtime.linux.cleanup;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

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

        /** A shim daemon or a container init: forked by the shim or by runc, never by a JVM's ProcessBuilder. */
        boolean neverSpawnedByJdk() {
            return shimDaemon || containerInit;
        }
    }

    private static final Path PROC = Path.of("/proc");

    private final String namespace;
    private final String id;
    private final Path bundleDir;
    private final String runcStateDir;

    BundleProcesses(String namespace, String id, Path bundleDir, Path runcStateDir) {
        this.namespace = namespace;
        this.id = id;
        this.bundleDir = bundleDir;
        this.runcStateDir = runcStateDir.toString();
    }

    /** Every live process of the bundle, other than this JVM. */
    List<Found> scan() throws IOException {
        List<Found> found = new ArrayList<>();
        long self = ProcessHandle.current().pid();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(PROC, entry ->
                entry.getFileName().toString().chars().allMatch(Character::isDigit))) {
            for (Path entry : entries) {
                int pid = Integer.parseInt(entry.getFileName().toString());
                if (pid != self) {
                    recognise(pid).ifPresent(found::add);
                }
            }
        }
        return found;
    }

    /** What {@code pid} is to this bundle, read now; empty if it is not one of its live processes. */
    Optional<Found> recognise(int pid) {
        Path proc = PROC.resolve(Integer.toString(pid));
        try {
            if (!isLive(proc)) {
                return Optional.empty();
            }
            List<String> argv = argv(proc);
            if (isShimOfBundle(argv) && inDirectory(proc, bundleDir)) {
                String action = argv.isEmpty() ? "" : argv.getLast();
                return Optional.of(new Found(pid, !action.equals("start") && !action.equals("delete"), false));
            }
            if (names(argv, "--bundle", bundleDir.toString()) || names(argv, "-bundle", bundleDir.toString())) {
                return Optional.of(new Found(pid, false, false));
            }
            if (argv.size() >= 2 && argv.get(1).equals("init")
                    && (inDirectory(proc, bundleDir.resolve("rootfs")) || hasStateDir(proc))) {
                return Optional.of(new Found(pid, false, true));
            }
            return Optional.empty();
        } catch (IOException | RuntimeException gone) {
            // It exited while we looked, or is a kernel thread with nothing to read: not ours.
            return Optional.empty();
        }
    }

    private boolean isShimOfBundle(List<String> argv) {
        return names(argv, "-id", id) && names(argv, "-namespace", namespace);
    }

    private boolean hasStateDir(Path proc) throws IOException {
        String wanted = "_LIBCONTAINER_STATEDIR=" + runcStateDir;
        return Arrays.asList(new String(Files.readAllBytes(proc.resolve("environ")), StandardCharsets.UTF_8)
                .split("\0")).contains(wanted);
    }

    private static boolean names(List<String> argv, String flag, String value) {
        for (int i = 0; i + 1 < argv.size(); i++) {
            if (argv.get(i).equals(flag) && argv.get(i + 1).equals(value)) {
                return true;
            }
        }
        return false;
    }

    private static List<String> argv(Path proc) throws IOException {
        String raw = new String(Files.readAllBytes(proc.resolve("cmdline")), StandardCharsets.UTF_8);
        return raw.isEmpty() ? List.of() : List.of(raw.split("\0"));
    }

    /** Whether the working directory of {@code proc} is {@code dir}: the same file, whatever symlinks lead there. */
    private static boolean inDirectory(Path proc, Path dir) {
        try {
            return Files.isSameFile(proc.resolve("cwd"), dir);
        } catch (IOException | SecurityException unreadable) {
            return false;
        }
    }

    /** Exists and is not a zombie: the state letter follows the parenthesised command name. */
    static boolean isLive(Path proc) {
        try {
            String stat = Files.readString(proc.resolve("stat"));
            char state = stat.charAt(stat.lastIndexOf(')') + 2);
            return state != 'Z' && state != 'X';
        } catch (IOException | RuntimeException gone) {
            return false;
        }
    }

    /** Whether {@code pid}'s parent is this JVM (it was adopted, the JVM being a child subreaper, or started here). */
    static boolean isChildOfThisJvm(int pid) {
        try {
            String stat = Files.readString(PROC.resolve(Integer.toString(pid)).resolve("stat"));
            String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return Long.parseLong(fields[1]) == ProcessHandle.current().pid();
        } catch (IOException | RuntimeException gone) {
            return false;
        }
    }

    static boolean isLive(int pid) {
        return isLive(PROC.resolve(Integer.toString(pid)));
    }
}
