package org.shimmer.examples.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** What the CLI tests need to know of processes outside the JVM. */
final class Processes {

    private Processes() {}

    /** Sends signal {@code name} (e.g. {@code TERM}) to {@code pid} with kill(1). */
    static void signal(long pid, String name) throws IOException, InterruptedException {
        Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(pid)).inheritIO().start();
        if (kill.waitFor() != 0) {
            throw new IOException("kill -" + name + " " + pid + " exited " + kill.exitValue());
        }
    }

    /** Live (not zombie) processes other than this JVM whose command line contains {@code text}. */
    static List<Long> mentioning(String text) throws IOException {
        List<Long> found = new ArrayList<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(Path.of("/proc"), entry ->
                entry.getFileName().toString().chars().allMatch(Character::isDigit))) {
            for (Path entry : entries) {
                long pid = Long.parseLong(entry.getFileName().toString());
                try {
                    String cmdline = new String(Files.readAllBytes(entry.resolve("cmdline")), StandardCharsets.UTF_8)
                            .replace('\0', ' ');
                    String stat = Files.readString(entry.resolve("stat"));
                    char state = stat.charAt(stat.lastIndexOf(')') + 2);
                    if (cmdline.contains(text) && pid != ProcessHandle.current().pid() && state != 'Z') {
                        found.add(pid);
                    }
                } catch (IOException gone) {
                    // Exited meanwhile.
                }
            }
        }
        return found;
    }
}
