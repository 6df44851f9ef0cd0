package org.shimmer.benchmarks;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What the scale benchmarks share: running a command, reading a process's memory from /proc, and a least-squares
 * slope.
 */
final class BenchProcesses {

    /** Clock ticks per second of /proc/stat (USER_HZ, 100 on Linux). */
    static final int TICKS_PER_SECOND = 100;

    private BenchProcesses() {}

    /** Runs {@code command} with stdin from /dev/null; returns stdout and stderr, failing if it exits non-zero. */
    static String run(List<String> command) throws IOException, InterruptedException {
        Process process = new ProcessBuilder(command)
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (process.waitFor() != 0) {
            throw new IllegalStateException(String.join(" ", command) + " failed: " + output);
        }
        return output;
    }

    /** {@link #run} that ignores the status: for cleanup of what may already be gone. */
    static void runQuietly(List<String> command) {
        try {
            Process process = new ProcessBuilder(command)
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectErrorStream(true).start();
            process.waitFor();
        } catch (IOException e) {
            System.err.println(String.join(" ", command) + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** A field of /proc/PID/smaps_rollup ({@code Rss}, {@code Pss}) in KiB; 0 when the process is gone. */
    static long smapsKib(long pid, String field) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "smaps_rollup"))) {
                if (line.startsWith(field + ":")) {
                    return Long.parseLong(line.substring(field.length() + 1).replace("kB", "").trim());
                }
            }
            return 0;
        } catch (IOException e) {
            return 0;
        }
    }

    /** The pids of live processes whose command line contains {@code command} and whose working directory is under
     * {@code under}: a shim's is its bundle. */
    static List<Long> pidsOf(String command, Path under) throws IOException {
        List<Long> pids = new ArrayList<>();
        try (var entries = Files.newDirectoryStream(Path.of("/proc"), "[0-9]*")) {
            for (Path entry : entries) {
                try {
                    String cmdline = new String(Files.readAllBytes(entry.resolve("cmdline")), StandardCharsets.UTF_8);
                    if (cmdline.contains(command) && Files.readSymbolicLink(entry.resolve("cwd")).startsWith(under)) {
                        pids.add(Long.parseLong(entry.getFileName().toString()));
                    }
                } catch (IOException gone) {
                    // Exited while we looked.
                }
            }
        }
        return pids;
    }

    /** The least-squares slope of y over x. */
    static double slope(List<double[]> points) {
        double n = points.size();
        double sx = 0;
        double sy = 0;
        double sxx = 0;
        double sxy = 0;
        for (double[] p : points) {
            sx += p[0];
            sy += p[1];
            sxx += p[0] * p[0];
            sxy += p[0] * p[1];
        }
        return (n * sxy - sx * sy) / (n * sxx - sx * sx);
    }

    /**
     * The Theil–Sen slope of y over x, the median of the slopes between every two points: one point MiB off (the
     * JVM's RSS jumps so now and then, for seconds) moves it little, where it tilts a least-squares line.
     */
    static double medianSlope(List<double[]> points) {
        List<Double> slopes = new ArrayList<>();
        for (int i = 0; i < points.size(); i++) {
            for (int j = i + 1; j < points.size(); j++) {
                if (points.get(j)[0] != points.get(i)[0]) {
                    slopes.add((points.get(j)[1] - points.get(i)[1]) / (points.get(j)[0] - points.get(i)[0]));
                }
            }
        }
        slopes.sort(null);
        int n = slopes.size();
        return n % 2 == 1 ? slopes.get(n / 2) : (slopes.get(n / 2 - 1) + slopes.get(n / 2)) / 2;
    }

    static String format(double value) {
        return String.format(Locale.ROOT, "%.2f", value);
    }

    /** This JVM's CPU (all its threads) in nanoseconds. */
    static long jvmCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    /**
     * CPU ticks of this JVM's compiler threads ({@code /proc/self/task/<tid>/stat}, user and system), those alive
     * now: compiler threads come and go, so this undercounts a burst in which one ended.
     */
    static long compilerCpuTicks() {
        long[] ticks = threadCpuTicks("CompilerThre");
        return ticks[0] + ticks[1];
    }

    /**
     * User and system CPU ticks of this JVM's threads whose name contains {@code name}, those alive now. A child
     * process's time is its own, even before its exec: a {@code vfork}ed child is a task of its own.
     */
    static long[] threadCpuTicks(String name) {
        long[] ticks = new long[2];
        try (var tasks = Files.newDirectoryStream(Path.of("/proc/self/task"))) {
            for (Path task : tasks) {
                try {
                    String stat = Files.readString(task.resolve("stat"));
                    int open = stat.indexOf('(');
                    int close = stat.lastIndexOf(')');
                    if (!stat.substring(open + 1, close).contains(name)) {
                        continue;
                    }
                    String[] fields = stat.substring(close + 2).split(" ");
                    // After the name: state is field 3 of stat, utime 14 and stime 15.
                    ticks[0] += Long.parseLong(fields[11]);
                    ticks[1] += Long.parseLong(fields[12]);
                } catch (IOException | RuntimeException gone) {
                    // The thread ended meanwhile.
                }
            }
        } catch (IOException unreadable) {
            // No /proc here: nothing counted.
        }
        return ticks;
    }
}
