package org.shimmer.runtime.linux.testing;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** Zombie children of this JVM: processes it inherited or started that nobody reaped. */
public final class Zombies {

    private static final long SELF = ProcessHandle.current().pid();

    private Zombies() {}

    /** The pids of the JVM's children that are zombies now ({@code /proc/<pid>/stat}: PPid is us, state Z). */
    public static List<Integer> ofThisJvm() {
        List<Integer> zombies = new ArrayList<>();
        try (DirectoryStream<Path> processes = Files.newDirectoryStream(Path.of("/proc"),
                entry -> entry.getFileName().toString().chars().allMatch(Character::isDigit))) {
            for (Path process : processes) {
                try {
                    String stat = Files.readString(process.resolve("stat"));
                    // After the parenthesised command name: state, then ppid.
                    String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                    if (fields[0].equals("Z") && Long.parseLong(fields[1]) == SELF) {
                        zombies.add(Integer.parseInt(process.getFileName().toString()));
                    }
                } catch (IOException | RuntimeException gone) {
                    // Exited and reaped while we looked.
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot list /proc", e);
        }
        return zombies;
    }

    /**
     * Waits until the JVM has no zombie child (reaping is asynchronous: a poll thread, or the JDK's reaper for its
     * own children); describes those still there after {@code timeout} (pid, name and pid in each namespace, so
     * a failure says whether a container process or a shim was left).
     */
    public static List<String> awaitNone(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        List<Integer> left = ofThisJvm();
        while (!left.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(20);
            left = ofThisJvm();
        }
        return left.stream().map(Zombies::describe).toList();
    }

    private static String describe(int pid) {
        try {
            String name = "?";
            String nspid = "?";
            for (String line : Files.readAllLines(Path.of("/proc", Integer.toString(pid), "status"))) {
                if (line.startsWith("Name:")) {
                    name = line.substring(5).strip();
                } else if (line.startsWith("NSpid:")) {
                    nspid = line.substring(6).strip().replaceAll("\\s+", "/");
                }
            }
            return pid + " (" + name + ", NSpid " + nspid + ")";
        } catch (IOException | RuntimeException gone) {
            return pid + " (gone)";
        }
    }

    /** The parent pid of {@code pid}, or -1 when it is gone. */
    public static long parentOf(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            return Long.parseLong(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[1]);
        } catch (IOException | RuntimeException gone) {
            return -1;
        }
    }
}
