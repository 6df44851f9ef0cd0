package org.shimmer.runtime.linux.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * What an operation can leave behind outside the objects a test holds: file descriptors of this JVM (a FIFO end,
 * a pidfd or poll registration, a socket each hold one), runc containers, processes.
 */
public final class Leaks {

    private static final Path SELF_FDS = Path.of("/proc/self/fd");

    private Leaks() {}

    /** This JVM's open descriptors now, each with what it points to. */
    public static Map<Integer, String> openFds() {
        Map<Integer, String> fds = new TreeMap<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(SELF_FDS)) {
            for (Path entry : entries) {
                try {
                    fds.put(Integer.parseInt(entry.getFileName().toString()),
                            Files.readSymbolicLink(entry).toString());
                } catch (IOException closedMeanwhile) {
                    // Closed between the listing and the read: not open.
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot list " + SELF_FDS, e);
        }
        return fds;
    }

    /**
     * Waits until this JVM holds no more descriptors than {@code before} (a channel closes on its event loop, a
     * reader on the poll thread: after the operation returned); returns the descriptors opened since that are
     * still open after {@code timeout}, empty if none.
     */
    public static Map<Integer, String> fdsAddedSince(Map<Integer, String> before, Duration timeout)
            throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        Map<Integer, String> now = openFds();
        while (now.size() > before.size() && System.nanoTime() < deadline) {
            Thread.sleep(20);
            now = openFds();
        }
        Map<Integer, String> added = new TreeMap<>();
        if (now.size() > before.size()) {
            now.forEach((fd, target) -> {
                if (!target.equals(before.get(fd))) {
                    added.put(fd, target + unixSocketLine(target));
                }
            });
        }
        return added;
    }

    /**
     * What this JVM holds open under {@code dir}: its descriptors of files there, and of sockets listening at a path
     * there (by {@code /proc/net/unix}).
     */
    public static List<String> heldUnder(Path dir) throws IOException {
        Map<String, String> listening = new HashMap<>();
        for (String line : Files.readAllLines(Path.of("/proc/net/unix"))) {
            String[] fields = line.trim().split("\\s+");
            if (fields.length >= 8) {
                listening.put("socket:[" + fields[6] + "]", fields[7]);
            }
        }
        return openFds().values().stream()
                .map(target -> listening.getOrDefault(target, target))
                .filter(target -> target.startsWith(dir + "/"))
                .toList();
    }

    /**
     * For a unix socket ({@code socket:[inode]}), its line of {@code /proc/net/unix} (flags, type, state, path): a
     * listener names its path, a connection whose peer is gone none. A leak once seen in CI said only "socket".
     */
    private static String unixSocketLine(String target) {
        if (!target.startsWith("socket:[")) {
            return "";
        }
        String inode = target.substring("socket:[".length(), target.length() - 1);
        try {
            for (String line : Files.readAllLines(Path.of("/proc/net/unix"))) {
                String[] fields = line.trim().split("\\s+");
                if (fields.length >= 7 && fields[6].equals(inode)) {
                    return " (/proc/net/unix: " + line.trim() + ")";
                }
            }
            return " (not a unix socket of this network namespace)";
        } catch (IOException | RuntimeException unreadable) {
            return "";
        }
    }

    /** The containers runc knows under {@code root} ({@code runc --root root list -q}); none if it has no root. */
    public static List<String> runcContainers(Path root) throws IOException, InterruptedException {
        if (!Files.isDirectory(root)) {
            return List.of();
        }
        return Processes.run(null, "runc", "--root", root.toString(), "list", "-q").lines()
                .filter(line -> !line.isBlank()).toList();
    }

    /**
     * Live processes that belong to something under {@code dir}: their command line names it or {@code id}, or
     * their root or working directory lies in it (a {@code runc init} waiting in a created container).
     */
    public static List<String> processesOf(Path dir, String id) {
        List<String> found = new ArrayList<>();
        String self = Long.toString(ProcessHandle.current().pid());
        try (Stream<Path> processes = Files.list(Path.of("/proc"))) {
            for (Path process : processes.filter(p -> p.getFileName().toString().chars()
                    .allMatch(Character::isDigit)).toList()) {
                if (process.getFileName().toString().equals(self)
                        || !Processes.isRunning(Long.parseLong(process.getFileName().toString()))) {
                    continue;
                }
                try {
                    String cmdline = new String(Files.readAllBytes(process.resolve("cmdline")),
                            StandardCharsets.UTF_8).replace('\0', ' ').strip();
                    boolean ours = cmdline.contains(dir.toString()) || cmdline.contains(id)
                            || linksInto(process.resolve("root"), dir) || linksInto(process.resolve("cwd"), dir);
                    if (ours) {
                        found.add(process.getFileName() + ": " + cmdline);
                    }
                } catch (IOException gone) {
                    // Exited while we looked.
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot list /proc", e);
        }
        return found;
    }

    /** {@link #processesOf}, waited for until empty (a process exits on its own time); what is left after that. */
    public static List<String> awaitNoProcessesOf(Path dir, String id, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        List<String> left = processesOf(dir, id);
        while (!left.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(20);
            left = processesOf(dir, id);
        }
        return left;
    }

    private static boolean linksInto(Path link, Path dir) {
        try {
            return Files.readSymbolicLink(link).startsWith(dir);
        } catch (IOException | UnsupportedOperationException unreadable) {
            return false;
        }
    }
}
