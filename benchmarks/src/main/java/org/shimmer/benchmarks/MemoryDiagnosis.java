package org.shimmer.benchmarks;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import javax.management.JMException;
import javax.management.ObjectName;

/**
 * Where a memory slope goes, from inside the measured JVM: the class histogram and, when the JVM runs with
 * {@code -XX:NativeMemoryTracking=summary}, native memory by category, each as a difference from a baseline and per
 * container. On with {@code -Dshimmer.bench.diagnose=true} (NMT itself adds a header to every malloc, so the
 * figures of such a run are not the benchmark's).
 */
final class MemoryDiagnosis {

    private static final int TOP = 20;

    private final Map<String, long[]> baseline;
    private final boolean nmt;

    private MemoryDiagnosis(Map<String, long[]> baseline, boolean nmt) {
        this.baseline = baseline;
        this.nmt = nmt;
    }

    static boolean enabled() {
        return Boolean.getBoolean("shimmer.bench.diagnose");
    }

    /** Takes the baselines. */
    static MemoryDiagnosis baseline() throws JMException {
        boolean nmt = ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
                .anyMatch(arg -> arg.startsWith("-XX:NativeMemoryTracking=") && !arg.endsWith("=off"));
        if (nmt) {
            command("vmNativeMemory", "baseline");
        }
        return new MemoryDiagnosis(histogram(), nmt);
    }

    /** Prints what grew since the baseline, divided by {@code containers}. */
    void print(int containers) throws JMException {
        Map<String, long[]> now = histogram();
        List<Map.Entry<String, long[]>> grown = new ArrayList<>();
        for (Map.Entry<String, long[]> entry : now.entrySet()) {
            long[] before = baseline.getOrDefault(entry.getKey(), new long[2]);
            grown.add(Map.entry(entry.getKey(),
                    new long[] {entry.getValue()[0] - before[0], entry.getValue()[1] - before[1]}));
        }
        grown.sort((a, b) -> Long.compare(b.getValue()[1], a.getValue()[1]));
        System.out.printf(Locale.ROOT, "heap growth by class, per container (%d):%n", containers);
        for (Map.Entry<String, long[]> entry : grown.subList(0, Math.min(TOP, grown.size()))) {
            System.out.printf(Locale.ROOT, "  %9.1f B %7.2f objects  %s%n", entry.getValue()[1] / (double) containers,
                    entry.getValue()[0] / (double) containers, entry.getKey());
        }
        if (nmt) {
            System.out.println(command("vmNativeMemory", "summary.diff"));
        }
    }

    private static Map<String, long[]> histogram() throws JMException {
        Map<String, long[]> classes = new HashMap<>();
        for (String line : command("gcClassHistogram").split("\n")) {
            String[] fields = line.trim().split("\\s+");
            if (fields.length >= 4 && fields[0].endsWith(":")) {
                classes.put(fields[3], new long[] {Long.parseLong(fields[1]), Long.parseLong(fields[2])});
            }
        }
        return classes;
    }

    private static String command(String operation, String... args) throws JMException {
        return (String) ManagementFactory.getPlatformMBeanServer().invoke(
                new ObjectName("com.sun.management:type=DiagnosticCommand"), operation, new Object[] {args},
                new String[] {String[].class.getName()});
    }
}
