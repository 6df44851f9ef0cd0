package org.shimmer.benchmarks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedFrame;
import jdk.jfr.consumer.RecordedStackTrace;
import jdk.jfr.consumer.RecordingFile;

/**
 * Two JFR recordings of the local shim. The measured lifecycles carry only the plugin's {@code org.shimmer.RuncCommand}
 * events (each runc process, and each runc step done in the JVM instead): they give the time spent in runc, and the
 * rest of a lifecycle minus the container's own run is Shimmer's. Where that time goes comes from a second pass of
 * lifecycles with execution sampling on, never the measured one: sampling every 2 ms (Java and native stacks of
 * every thread) cost the measured lifecycles about as much as the work it was looking at. Read by event name, so
 * the benchmark sees nothing of the plugin's classes.
 */
final class LocalProfile implements AutoCloseable {

    private static final String RUNC = "org.shimmer.RuncCommand";
    private static final int TOP_FRAMES = 12;

    private final Recording timing = new Recording();
    private final Recording sampling = new Recording();
    private final Path file;
    private Instant measuredFrom = Instant.MAX;

    /** Its recordings are dumped in {@code dir}, the run's directory, which the script removes however it ends. */
    LocalProfile(Path dir) throws IOException {
        file = Files.createTempFile(dir, "lifecycle", ".jfr");
        timing.enable(RUNC).withThreshold(Duration.ZERO);
        timing.start();
        sampling.enable("jdk.ExecutionSample").withPeriod(Duration.ofMillis(2));
        sampling.enable("jdk.NativeMethodSample").withPeriod(Duration.ofMillis(2));
    }

    /**
     * Marks where the measured lifecycles begin: only runc events from then on count. The timing recording itself
     * runs from before the warm-up: started after it, it had JFR rewrite the event's class as the measured
     * lifecycles began, and the code that commits the event was compiled again during them.
     */
    void start() {
        measuredFrom = Instant.now();
    }

    /** Ends the measured lifecycles and starts sampling, for the profiled pass that follows. */
    void startSampling() {
        timing.stop();
        sampling.start();
    }

    /**
     * Prints the breakdown of {@code n} measured lifecycles of {@code meanMs} each, whose steps took {@code steps}
     * nanoseconds in all, and the profile of the {@code profiled} lifecycles since {@link #startSampling}; returns
     * Shimmer's own ms per lifecycle.
     */
    double report(double meanMs, long[] steps, int n, int profiled) throws IOException {
        sampling.stop();
        timing.dump(file);
        List<RecordedEvent> measuredEvents = RecordingFile.readAllEvents(file);
        sampling.dump(file);
        List<RecordedEvent> events = RecordingFile.readAllEvents(file);
        System.out.println("local per-step breakdown (mean ms per lifecycle):");
        StringBuilder line = new StringBuilder(" ");
        for (int step = 0; step < LifecycleBenchmark.STEPS.size(); step++) {
            line.append(String.format(Locale.ROOT, " %s %.2f", LifecycleBenchmark.STEPS.get(step),
                    steps[step] / 1e6 / n));
        }
        System.out.println(line);

        List<RecordedEvent> measured = measuredEvents.stream()
                .filter(e -> e.getEventType().getName().equals(RUNC) && !e.getStartTime().isBefore(measuredFrom))
                .toList();
        Map<String, double[]> byCommand = new TreeMap<>();
        double inRunc = 0;
        double inJvm = 0;
        for (RecordedEvent event : measured) {
            String key = (event.getBoolean("inJvm") ? "in the JVM: " : "runc ") + event.getString("command");
            double ms = event.getDuration().toNanos() / 1e6;
            double[] sum = byCommand.computeIfAbsent(key, k -> new double[2]);
            sum[0] += ms;
            sum[1]++;
            if (event.getBoolean("inJvm")) {
                inJvm += ms;
            } else {
                inRunc += ms;
            }
        }
        System.out.println("runc per lifecycle (mean ms, count per lifecycle):");
        byCommand.forEach((command, sum) -> System.out.printf(Locale.ROOT, "  %-24s %7.2f ms  x%.1f%n", command,
                sum[0] / n, sum[1] / n));
        StringBuilder beyond = new StringBuilder("  each step beyond its runc command (in the JVM or not):");
        for (String step : List.of("create", "start", "delete")) {
            double stepMs = steps[LifecycleBenchmark.STEPS.indexOf(step)] / 1e6 / n;
            double runcStep = byCommand.entrySet().stream().filter(entry -> entry.getKey().endsWith(" " + step))
                    .mapToDouble(entry -> entry.getValue()[0] / n).sum();
            beyond.append(String.format(Locale.ROOT, " %s %.2f", step, stepMs - runcStep));
        }
        System.out.println(beyond);
        double runcMs = inRunc / n;
        // The wait up to the reap is the container's run (and the kernel's and the exit monitor's wake-up, which
        // cannot be told apart from it); from the reap on, the exit is Shimmer's to hand on.
        double afterReapMs = steps[LifecycleBenchmark.AFTER_REAP] / 1e6 / n;
        double waitMs = steps[LifecycleBenchmark.STEPS.indexOf("wait")] / 1e6 / n - afterReapMs;
        double own = meanMs - runcMs - waitMs;
        System.out.printf(Locale.ROOT, "Shimmer's own time per lifecycle: %.2f ms = %.2f total - %.2f inside runc "
                + "processes - %.2f waiting for the container's exit until its reap (its run, counted as the "
                + "container's); of it %.2f ms runc's start/delete done in the JVM, %.2f ms the exit handed on from "
                + "its reap to the caller%n", own, meanMs, runcMs, waitMs, inJvm / n, afterReapMs);

        System.out.printf(Locale.ROOT, "profile: from a pass of %d more local lifecycles with JFR sampling on (not the "
                + "measured ones)%n", profiled);
        // Running Java code (execution samples) is CPU; a thread in native code (native samples) mostly waits:
        // poll loops, process reapers. Both by top frame past the method-handle plumbing of FFM downcalls, and
        // by the innermost Shimmer frame, which says which of our steps the time belongs to.
        Map<String, Integer> running = new HashMap<>();
        Map<String, Integer> inNative = new HashMap<>();
        Map<String, Integer> ours = new HashMap<>();
        for (RecordedEvent event : events) {
            String type = event.getEventType().getName();
            boolean execution = type.equals("jdk.ExecutionSample");
            RecordedStackTrace stack = execution || type.equals("jdk.NativeMethodSample") ? event.getStackTrace()
                    : null;
            if (stack == null || stack.getFrames().isEmpty()) {
                continue;
            }
            List<RecordedFrame> frames = stack.getFrames();
            String top = frames.stream().map(LocalProfile::frame).filter(name -> !name.startsWith("java.lang.invoke."))
                    .findFirst().orElse(frame(frames.getFirst()));
            (execution ? running : inNative).merge(top, 1, Integer::sum);
            frames.stream().map(LocalProfile::frame).filter(name -> name.startsWith("org.shimmer.runtime"))
                    .findFirst().ifPresent(name -> ours.merge(name + (execution ? " (running)" : " (in native)"), 1,
                            Integer::sum));
        }
        print("profile: top frames running Java code (JFR execution samples every 2 ms):", running);
        print("profile: top frames in native code (JFR native samples, mostly waiting):", inNative);
        print("profile: innermost Shimmer frame of every sample:", ours);
        return own;
    }

    private static void print(String title, Map<String, Integer> counts) {
        int total = Math.max(1, counts.values().stream().mapToInt(Integer::intValue).sum());
        System.out.println(title + " " + total + " samples");
        counts.entrySet().stream().sorted(Map.Entry.<String, Integer>comparingByValue().reversed()).limit(TOP_FRAMES)
                .forEach(entry -> System.out.printf(Locale.ROOT, "  %5.1f%%  %s%n", 100.0 * entry.getValue() / total,
                        entry.getKey()));
    }

    private static String frame(RecordedFrame frame) {
        return frame.getMethod().getType().getName() + "." + frame.getMethod().getName();
    }

    @Override
    public void close() throws IOException {
        timing.close();
        sampling.close();
        Files.deleteIfExists(file);
    }
}
