package org.shimmer.examples.cli;

import java.util.Locale;

/** Sizes and CPU times as {@code stats} prints them, docker's way: binary units, one decimal. */
final class HumanUnits {

    private static final String[] UNITS = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};

    private HumanUnits() {}

    /** {@code 512B}, {@code 1.5KiB}, {@code 12.3MiB}. */
    static String bytes(long bytes) {
        if (bytes < 1024) {
            return bytes + "B";
        }
        double value = bytes;
        int unit = 0;
        while (value >= 1024 && unit < UNITS.length - 1) {
            value /= 1024;
            unit++;
        }
        return String.format(Locale.ROOT, "%.1f%s", value, UNITS[unit]);
    }

    /** CPU time in nanoseconds as seconds: {@code 1.234s}. */
    static String seconds(long nanos) {
        return String.format(Locale.ROOT, "%.3fs", nanos / 1e9);
    }

    /**
     * The share of one CPU used over an interval, as docker prints it: {@code 250.0%} for two and a half CPUs busy.
     *
     * @param cpuNanos CPU time used during the interval
     * @param wallNanos the interval's length; an empty one reads {@code 0.0%}
     */
    static String percent(long cpuNanos, long wallNanos) {
        double share = wallNanos <= 0 ? 0 : 100.0 * cpuNanos / wallNanos;
        return String.format(Locale.ROOT, "%.1f%%", share);
    }
}
