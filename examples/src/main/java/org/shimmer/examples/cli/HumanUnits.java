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
     * {@code part} as a percentage of {@code whole}: memory of its limit, or CPU time of an interval's length, as
     * docker prints it ({@code 250.0%} for two and a half CPUs busy).
     *
     * @param whole an empty or negative one reads {@code 0.0%}
     */
    static String percent(long part, long whole) {
        double share = whole <= 0 ? 0 : 100.0 * part / whole;
        return String.format(Locale.ROOT, "%.1f%%", share);
    }
}
