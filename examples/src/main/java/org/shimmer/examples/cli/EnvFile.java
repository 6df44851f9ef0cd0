package org.shimmer.examples.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Environment entries as docker's {@code -e} and {@code --env-file} take them: {@code K=V} sets {@code K}, a
 * {@code K} alone takes our own value of {@code K} and sets nothing when we have none. In a file, blank lines and
 * lines starting with {@code #} are skipped, and the rest of a line is the value, quotes and spaces included.
 */
final class EnvFile {

    private EnvFile() {}

    /** {@code entries} as names to values, in order; a later entry of a name replaces an earlier one. */
    static Map<String, String> entries(List<String> entries, Map<String, String> ours, String origin) {
        Map<String, String> env = new LinkedHashMap<>();
        for (String entry : entries) {
            int equals = entry.indexOf('=');
            String name = equals < 0 ? entry : entry.substring(0, equals);
            if (name.isEmpty() || name.chars().anyMatch(Character::isWhitespace)) {
                throw new CliException("invalid environment entry '" + entry + "' in " + origin
                        + ": NAME=VALUE or NAME");
            }
            if (equals >= 0) {
                env.put(name, entry.substring(equals + 1));
            } else if (ours.containsKey(name)) {
                env.put(name, ours.get(name));
            }
        }
        return env;
    }

    /** The entries of {@code file}, in docker's env-file format. */
    static Map<String, String> read(Path file, Map<String, String> ours) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new CliException("env file " + file + " does not exist");
        } catch (IOException e) {
            throw new CliException("cannot read env file " + file + ": " + e.getMessage());
        }
        List<String> entries = lines.stream()
                .map(String::stripLeading)
                .filter(line -> !line.isEmpty() && !line.startsWith("#"))
                .toList();
        return entries(entries, ours, "env file " + file);
    }
}
