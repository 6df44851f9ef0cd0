package org.shimmer.benchmarks;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;
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

    /** NMT's committed KiB by category that moved since the last call, in one line; empty without NMT. */
    String nmtLine() throws JMException {
        Map<String, Integer> threads = new java.util.TreeMap<>();
        for (Thread thread : Thread.getAllStackTraces().keySet()) {
            threads.merge(thread.getName().replaceAll("[-#]?[0-9]+$", ""), 1, Integer::sum);
        }
        if (!nmt) {
            return " | threads " + threads;
        }
        StringBuilder line = new StringBuilder(" | threads " + threads);
        for (String row : command("vmNativeMemory", "summary").split("\n")) {
            var matcher = CATEGORY.matcher(row);
            if (matcher.find()) {
                long kib = Long.parseLong(matcher.group(2));
                Long before = lastNmt.put(matcher.group(1), kib);
                if (before == null || Math.abs(kib - before) >= 64) {
                    line.append(' ').append(matcher.group(1).replace(' ', '_')).append('=').append(kib);
                }
            }
        }
        return " | NMT committed KiB:" + line;
    }

    private static final Pattern CATEGORY =
            Pattern.compile("^-?\\s*([A-Za-z][A-Za-z ]*?)\\s*\\(reserved=\\d+KB, committed=(\\d+)KB");
    private final Map<String, Long> lastNmt = new HashMap<>();

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

    /** Runs a diagnostic command ({@code jcmd}'s, named as the platform MBean names them) in this JVM. */
    static String command(String operation, String... args) throws JMException {
        return (String) ManagementFactory.getPlatformMBeanServer().invoke(
                new ObjectName("com.sun.management:type=DiagnosticCommand"), operation, new Object[] {args},
                new String[] {String[].class.getName()});
    }
}
