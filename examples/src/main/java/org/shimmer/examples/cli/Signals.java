package org.shimmer.examples.cli;

import java.util.Locale;

/**
 * Signal names as operators type them ({@code TERM}, {@code SIGTERM}, {@code sigterm}, {@code 15}) and as the CLI
 * prints them: Linux's numbering (x86_64 and arm64 share it). Before it, {@code --signal KILL} failed with
 * {@code For input string: "KILL"}.
 */
final class Signals {

    /** Linux's signal names by number; index 0 is not a signal. */
    private static final String[] NAMES = {null, "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL",
        "USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
        "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS"};

    /** The highest signal number, SIGRTMAX. */
    static final int MAX = 64;

    private Signals() {}

    /**
     * The number of a signal given by name, with or without {@code SIG}, in any case, or by number (1 to
     * {@link #MAX}).
     *
     * @throws IllegalArgumentException naming the value and giving examples
     */
    static int parse(String text) {
        String word = text.strip().toUpperCase(Locale.ROOT);
        if (!word.isEmpty() && word.chars().allMatch(Character::isDigit)) {
            try {
                int number = Integer.parseInt(word);
                if (number >= 1 && number <= MAX) {
                    return number;
                }
            } catch (NumberFormatException tooLong) {
                // Reported below like any other bad value.
            }
            throw unknown(text);
        }
        String name = word.startsWith("SIG") ? word.substring(3) : word;
        for (int number = 1; number < NAMES.length; number++) {
            if (NAMES[number].equals(name)) {
                return number;
            }
        }
        if (name.equals("IOT")) {
            return 6;
        }
        if (name.equals("POLL")) {
            return 29;
        }
        throw unknown(text);
    }

    /** {@code SIGTERM} for 15; a signal without a name (a real-time one) as its number. */
    static String name(int number) {
        return number >= 1 && number < NAMES.length ? "SIG" + NAMES[number] : Integer.toString(number);
    }

    private static IllegalArgumentException unknown(String text) {
        return new IllegalArgumentException("unknown signal '" + text + "': give a name or a number, e.g. TERM,"
                + " SIGTERM, sigkill, 15 or 9 (1-" + MAX + ")");
    }
}
