package org.shimmer.examples.host;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.spec.Spec;

/**
 * The plugins directory as several hosts share it: CLI commands start at once on it, and one may be killed while
 * it expands the zip. Every host must load the whole plugin, and nothing half-made may stay beside the zip.
 */
class PluginZipExpansionIntegrationTests {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);
    private static final int HOSTS_AT_ONCE = 4;
    private static final int ROUNDS = 3;

    @TempDir
    Path temp;

    private Path pluginsDir;
    private Path zip;
    private final List<Process> spawned = new ArrayList<>();

    @BeforeEach
    void setUp() throws IOException {
        pluginsDir = Files.createDirectories(temp.resolve("plugins"));
        zip = pluginsDir.resolve(builtZip().getFileName());
        Files.copy(builtZip(), zip);
    }

    @AfterEach
    void stopSpawnedHosts() throws InterruptedException {
        for (Process host : spawned) {
            host.destroyForcibly();
            host.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        }
    }

    /**
     * What PF4J's in-place expansion leaves when its host is SIGKILLed midway: the directory, newer than the zip,
     * with the descriptor and some jars, one cut short, the plugin's own jar not yet written. PF4J took it as
     * complete, and every later start failed with "no plugin ... provides a RuntimePlugin" until it was removed by
     * hand. Beside it, the scratch directory of a host killed while expanding the way the fix does.
     */
    @Test
    void aHalfExpandedPluginLeftByAKilledHostIsExpandedAgainAndLoads() throws Exception {
        Path expanded = PluginZips.expandedDir(zip);
        Path lib = Files.createDirectories(expanded.resolve("lib"));
        try (ZipFile whole = new ZipFile(zip.toFile())) {
            Files.write(expanded.resolve("plugin.properties"),
                    whole.getInputStream(whole.getEntry("plugin.properties")).readAllBytes());
            String firstJar = whole.stream().map(ZipEntry::getName)
                    .filter(name -> name.startsWith("lib/") && name.endsWith(".jar")).findFirst().orElseThrow();
            byte[] jar = whole.getInputStream(whole.getEntry(firstJar)).readAllBytes();
            Files.write(expanded.resolve(firstJar), Arrays.copyOf(jar, jar.length / 2));
        }
        // The zip was there before the host began to expand it.
        Files.setLastModifiedTime(zip, FileTime.from(Files.getLastModifiedTime(expanded).toInstant()
                .minusSeconds(1)));
        Path deadScratch = Files.createDirectories(pluginsDir.resolve(
                PluginZips.scratchPrefix(expanded, deadPid()) + "42").resolve("lib"));

        try (PluginHost host = PluginHost.start(pluginsDir)) {
            RuntimePlugin runtime = host.runtime().withConfig(new RuntimeConfig(temp.resolve("state"),
                    temp.resolve("work")));
            Bundle bundle = runtime.create("zips", "whole", Spec.builder().args("/bin/true").build())
                    .block(TIMEOUT);
            assertThat(runtime.load("zips", "whole").block(TIMEOUT).id()).isEqualTo("whole");
            bundle.delete().block(TIMEOUT);
        }

        assertThat(deadScratch).doesNotExist();
        try (Stream<Path> bundles = Files.list(temp.resolve("state/zips"))) {
            assertThat(bundles).as("bundles left").isEmpty();
        }
        assertNothingLeftBesideTheZip();
    }

    /**
     * CLI commands started at once after the zip changed (a rebuild, an upgrade): PF4J had each delete and rewrite
     * the one directory, and most of them failed to find the plugin.
     */
    @Test
    void hostsStartingAtOnceAfterTheZipChangedAllLoadThePlugin() throws Exception {
        for (int round = 1; round <= ROUNDS; round++) {
            replaceZip();
            List<Process> hosts = new ArrayList<>();
            for (int i = 0; i < HOSTS_AT_ONCE; i++) {
                hosts.add(spawnCli("plugins"));
            }
            for (int i = 0; i < hosts.size(); i++) {
                Process host = hosts.get(i);
                assertThat(host.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("host %d exited", i).isTrue();
                String out = new String(host.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                String err = Files.readString(stderrOf(host));
                assertThat(host.exitValue()).as("round %d, host %d: %s", round, i, err).isZero();
                assertThat(out).as("round %d, host %d", round, i).startsWith("shimmer-linux-runtime ");
            }
        }
        assertNothingLeftBesideTheZip();
    }

    /** A new zip, as a deployment puts it: a finished file renamed into place. */
    private void replaceZip() throws IOException {
        Path staged = temp.resolve("staged.zip");
        Files.copy(builtZip(), staged, StandardCopyOption.REPLACE_EXISTING);
        Files.move(staged, zip, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private Process spawnCli(String... args) throws IOException {
        List<String> command = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow(),
                "--enable-native-access=ALL-UNNAMED", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                "-cp", System.getProperty("java.class.path"), "org.shimmer.examples.cli.ShimmerCli",
                "--plugins", pluginsDir.toString(), "--state-root", temp.resolve("state").toString(),
                "--work-root", temp.resolve("work").toString()));
        command.addAll(List.of(args));
        Path stderr = temp.resolve("host-" + spawned.size() + ".err");
        Process host = new ProcessBuilder(command).redirectError(stderr.toFile()).start();
        spawned.add(host);
        return host;
    }

    private Path stderrOf(Process host) {
        return temp.resolve("host-" + spawned.indexOf(host) + ".err");
    }

    /** The zip, its whole expansion stamped with it, and nothing else: no scratch or stale directory. */
    private void assertNothingLeftBesideTheZip() throws IOException {
        Path expanded = PluginZips.expandedDir(zip);
        try (Stream<Path> entries = Files.list(pluginsDir)) {
            assertThat(entries.map(path -> path.getFileName().toString()))
                    .containsExactlyInAnyOrder(zip.getFileName().toString(), expanded.getFileName().toString());
        }
        assertThat(expanded.resolve(PluginZips.STAMP)).exists();
        assertThat(spawned).allSatisfy(host -> assertThat(host.isAlive()).isFalse());
        assertThat(Thread.getAllStackTraces().keySet()).as("plugin threads")
                .noneMatch(thread -> thread.isAlive() && thread.getName().startsWith("shimmer-"));
    }

    /** A pid no process has: one that just exited (a reuse within the test is as good as impossible). */
    private static long deadPid() throws Exception {
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        return gone.pid();
    }

    private static Path builtZip() throws IOException {
        Path dir = Path.of(System.getProperty("shimmer.plugins.dir", "target/plugins"));
        try (Stream<Path> zips = Files.list(dir)) {
            return zips.filter(p -> p.getFileName().toString().endsWith(".zip")).findFirst()
                    .orElseThrow(() -> new IllegalStateException("no plugin zip in " + dir));
        }
    }
}
