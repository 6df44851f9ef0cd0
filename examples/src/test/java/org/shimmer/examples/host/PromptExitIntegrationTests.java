package org.shimmer.examples.host;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A host JVM ends as soon as its {@code main} returns after stopping the plugin: nothing the plugin started (io
 * scheduler, event loops, the poll thread, what stopping them starts) keeps it alive. The host runs a container
 * through each shim first, so every loop and socket has been used.
 */
class PromptExitIntegrationTests {

    private static final Duration PROMPT = Duration.ofSeconds(2);

    @TempDir
    Path temp;

    @Test
    void aHostJvmExitsWithinTwoSecondsOfMainReturning() throws Exception {
        Path pluginsDir = Files.createDirectories(temp.resolve("plugins"));
        Files.copy(pluginZip(), pluginsDir.resolve(pluginZip().getFileName()));
        Path work = Files.createDirectories(temp.resolve("work"));
        Process host = new ProcessBuilder(List.of(ProcessHandle.current().info().command().orElseThrow(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                StopThenReturnHost.class.getName(), pluginsDir.toString(), work.toString()))
                .redirectError(temp.resolve("host-stderr.log").toFile()).start();
        try {
            long markerAt = awaitMarker(host);
            assertThat(host.waitFor(30, TimeUnit.SECONDS)).as("the host JVM exits").isTrue();
            Duration lingered = Duration.ofNanos(System.nanoTime() - markerAt);
            System.out.printf("host JVM exited %d ms after main returned%n", lingered.toMillis());
            assertThat(host.exitValue()).as("stderr: %s", Files.readString(temp.resolve("host-stderr.log")))
                    .isZero();
            assertThat(lingered).as("time from main's return to the JVM's exit").isLessThan(PROMPT);
        } finally {
            host.destroyForcibly().waitFor();
        }
        assertThat(namespaces(work.resolve("state"))).as("bundles left").isEmpty();
        assertThat(leftoverProcesses(work)).as("processes still using %s", work).isEmpty();
        assertThat(StateRootCgroups.removeEmptyAndListLeft(work.resolve("state"))).as("container cgroups").isEmpty();
    }

    /** Reads the host's stdout to the marker; the instant the marker line arrived. */
    private static long awaitMarker(Process host) throws IOException {
        BufferedReader out = new BufferedReader(new InputStreamReader(host.getInputStream(), StandardCharsets.UTF_8));
        for (String line; (line = out.readLine()) != null; ) {
            if (line.equals(StopThenReturnHost.MARKER)) {
                return System.nanoTime();
            }
        }
        throw new AssertionError("the host ended without returning from main normally");
    }

    private static List<Path> namespaces(Path stateRoot) throws IOException {
        try (Stream<Path> entries = Files.list(stateRoot)) {
            return entries.filter(path -> !path.getFileName().toString().startsWith(".")).filter(path -> {
                try (Stream<Path> bundles = Files.list(path)) {
                    return bundles.findAny().isPresent();
                } catch (IOException e) {
                    return true;
                }
            }).toList();
        }
    }

    private static List<String> leftoverProcesses(Path work) {
        return ProcessHandle.allProcesses()
                .map(process -> process.info().commandLine().orElse(""))
                .filter(line -> line.contains(work.toString()))
                .toList();
    }

    private static Path pluginZip() throws IOException {
        Path dir = Path.of(System.getProperty("shimmer.plugins.dir", "target/plugins"));
        try (Stream<Path> zips = Files.list(dir)) {
            return zips.filter(p -> p.getFileName().toString().endsWith(".zip")).findFirst()
                    .orElseThrow(() -> new IllegalStateException("no plugin zip in " + dir));
        }
    }
}
