package org.shimmer.examples.cli;

import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Signal names as {@code kill -s} and {@code docker kill --signal} take them: {@code TERM}, {@code SIGTERM},
 * {@code sigterm} or the number {@code 15}, and as the CLI prints them. The numbers are Linux's on x86-64 and arm64
 * (the signals that differ between architectures, such as SIGSTKFLT, are left out). Before,
 * {@code --signal KILL} failed with {@code For input string: "KILL"}.
 */
final class Signals {

    private static final Map<String, Integer> NUMBERS = Map.ofEntries(
            Map.entry("HUP", 1), Map.entry("INT", 2), Map.entry("QUIT", 3), Map.entry("ILL", 4),
            Map.entry("TRAP", 5), Map.entry("ABRT", 6), Map.entry("IOT", 6), Map.entry("BUS", 7),
            Map.entry("FPE", 8), Map.entry("KILL", 9), Map.entry("USR1", 10), Map.entry("SEGV", 11),
            Map.entry("USR2", 12), Map.entry("PIPE", 13), Map.entry("ALRM", 14), Map.entry("TERM", 15),
            Map.entry("CHLD", 17), Map.entry("CONT", 18), Map.entry("STOP", 19), Map.entry("TSTP", 20),
            Map.entry("TTIN", 21), Map.entry("TTOU", 22), Map.entry("URG", 23), Map.entry("XCPU", 24),
            Map.entry("XFSZ", 25), Map.entry("VTALRM", 26), Map.entry("PROF", 27), Map.entry("WINCH", 28),
            Map.entry("IO", 29), Map.entry("POLL", 29), Map.entry("PWR", 30), Map.entry("SYS", 31));
    /** Each number's name for display; the aliases (IOT, POLL) are never printed. */
    private static final Map<Integer, String> NAMES = NUMBERS.entrySet().stream()
            .filter(entry -> !entry.getKey().equals("IOT") && !entry.getKey().equals("POLL"))
            .collect(Collectors.toUnmodifiableMap(Map.Entry::getValue, entry -> "SIG" + entry.getKey()));
    /** The highest real-time signal on Linux: numbers up to it are valid though unnamed here. */
    private static final int SIGRTMAX = 64;

    private Signals() {}

    /** The number of {@code signal}, a name (with or without {@code SIG}, any case) or a number 1 to 64. */
    static int parse(String signal) {
        String word = signal.strip().toUpperCase(Locale.ROOT);
        if (!word.isEmpty() && word.chars().allMatch(Character::isDigit)) {
            int number = word.length() > 2 ? 0 : Integer.parseInt(word);
            if (number < 1 || number > SIGRTMAX) {
                throw new CliException("invalid signal " + signal + ": numbers go from 1 to " + SIGRTMAX);
            }
            return number;
        }
        Integer number = NUMBERS.get(word.startsWith("SIG") ? word.substring(3) : word);
        if (number == null) {
            throw new CliException("invalid signal " + signal + ": a name such as TERM, SIGTERM, sigkill or HUP, or"
                    + " a number such as 15 or 9");
        }
        return number;
    }

    /** {@code SIGTERM} for 15; a signal without a name here (a real-time one) as its number. */
    static String name(int number) {
        return NAMES.getOrDefault(number, Integer.toString(number));
    }
}
