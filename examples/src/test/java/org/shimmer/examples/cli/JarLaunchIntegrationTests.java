package org.shimmer.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.examples.host.BusyboxRootfs;
import picocli.CommandLine;

/**
 * The packaged CLI as a user starts it: {@code java -jar shimmer.jar …} with no JVM flag at all, and
 * {@code bin/shimmer}. Issue 13: every command printed four JVM warning lines unless the user knew to add
 * {@code --enable-native-access=ALL-UNNAMED}. Runs after {@code package} (tag {@code jar-launch}, see the pom), on
 * the jar, the plugins directory and the AOT cache the build made.
 */
@Tag("jar-launch")
class JarLaunchIntegrationTests {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);
    private static final Path JAR = Path.of(System.getProperty("shimmer.jar", "target/shimmer.jar")).toAbsolutePath();
    private static final Path LAUNCHER =
            Path.of(System.getProperty("shimmer.launcher", "../bin/shimmer")).toAbsolutePath();

    @TempDir
    Path temp;

    private List<String> roots;

    /** What one child printed and returned. */
    private record Outcome(int status, String out, String err) {}

    @BeforeEach
    void setUp() {
        roots = List.of("--state-root", temp.resolve("state").toString(),
                "--work-root", temp.resolve("work").toString());
    }

    @AfterEach
    void nothingLeft() throws Exception {
        CliLeftovers.assertNoneUnder(temp);
    }

    @Test
    void theHelpOfEveryCommandPrintsNoWarning() throws Exception {
        List<List<String>> commands = new ArrayList<>();
        commands.add(List.of());
        subcommands(new ShimmerCli(System.out, System.err).commandLine(), List.of(), commands);
        for (List<String> command : commands) {
            List<String> args = new ArrayList<>(command);
            args.add("--help");

            Outcome help = javaJar(args);

            assertThat(help.status()).as(args + ": " + help.err()).isZero();
            assertThat(help.out()).as(args.toString()).startsWith("Usage: shimmer");
            assertNoWarning(help);
        }
    }

    @Test
    void versionPrintsTheJarsVersionAndNoWarning() throws Exception {
        Outcome version = javaJar("--version");

        assertThat(version.status()).as(version.err()).isZero();
        assertThat(version.out()).startsWith("shimmer ").doesNotContain("development build");
        assertNoWarning(version);
    }

    @Test
    void commandsThatLoadThePluginPrintNoWarning() throws Exception {
        for (List<String> command : List.of(List.of("ps"), List.of("images", "ls"), List.of("plugins"))) {
            Outcome outcome = javaJar(withRoots(command));

            assertThat(outcome.status()).as(command + ": " + outcome.err()).isZero();
            assertNoWarning(outcome);
        }
    }

    @Test
    void aUsageErrorPrintsItsOwnLineAndNoWarning() throws Exception {
        Outcome outcome = javaJar(withRoots(List.of("no-such-command")));

        assertThat(outcome.status()).isEqualTo(ExitCodes.SHIMMER);
        assertThat(outcome.err()).startsWith("shimmer: unknown command no-such-command");
        assertNoWarning(outcome);
    }

    @Test
    void aLocalShimRunThroughTheJarPrintsOnlyTheContainersOutput() throws Exception {
        // The first command to call libc through FFM for real: mounts, FIFOs, poll, pidfds.
        Path rootfs = BusyboxRootfs.write(temp.resolve("rootfs"));
        Outcome run = javaJar(withRoots(List.of("run", "--rm", "--shim", "local", "--rootfs", rootfs.toString(),
                "jar-run", "--", "/bin/sh", "-c", "echo hello from the jar; exit 3")));

        assertThat(run.status()).as(run.err()).isEqualTo(3);
        assertThat(run.out()).isEqualTo("hello from the jar\n");
        assertThat(run.err()).isEmpty();
    }

    @Test
    void theLauncherRunsTheJarFromAnyDirectory() throws Exception {
        Path elsewhere = Files.createDirectories(temp.resolve("elsewhere"));

        Outcome version = start(List.of(LAUNCHER.toString(), "--version"), elsewhere);
        List<String> command = new ArrayList<>(List.of(LAUNCHER.toString()));
        command.addAll(withRoots(List.of("plugins")));
        Outcome plugins = start(command, elsewhere);

        assertThat(version.status()).as(version.err()).isZero();
        assertThat(version.out()).startsWith("shimmer ");
        assertNoWarning(version);
        // The plugins directory beside the jar, not beside the working directory.
        assertThat(plugins.status()).as(plugins.err()).isZero();
        assertThat(plugins.out()).startsWith("shimmer-linux-runtime ").contains(JAR.getParent().toString());
        assertNoWarning(plugins);
    }

    /**
     * {@code shimmer run -i … <&-}: a closed stdin was the first file the JVM opened, its {@code lib/modules}, which
     * {@code -i} poured into the container as its input. The launcher opens {@code /dev/null} on a standard
     * descriptor its caller closed, as Go's runtime (and so docker) does: the container reads end of input at once.
     */
    @Test
    void theLauncherGivesAClosedStdinAsEndOfInput() throws Exception {
        Path rootfs = BusyboxRootfs.write(temp.resolve("rootfs"));
        List<String> command = new ArrayList<>(List.of("/bin/bash", "-c", "exec \"$@\" <&-", "closed-stdin",
                LAUNCHER.toString()));
        command.addAll(withRoots(List.of("run", "-i", "--rm", "--rootfs", rootfs.toString(), "closed-in", "--",
                "/bin/sh", "-c", "if read -r line; then echo read a line; else echo end of input; fi")));

        Outcome run = start(command, temp);

        assertThat(run.status()).as(run.err()).isZero();
        assertThat(run.out()).isEqualTo("end of input\n");
        assertNoWarning(run);
    }

    /** Every command under {@code line}, as the words that name it, depth first. */
    private static void subcommands(CommandLine line, List<String> path, List<List<String>> found) {
        for (Map.Entry<String, CommandLine> sub : line.getSubcommands().entrySet()) {
            // Aliases map to the same command: each is listed under its own name once.
            if (!sub.getKey().equals(sub.getValue().getCommandName())) {
                continue;
            }
            List<String> words = new ArrayList<>(path);
            words.add(sub.getKey());
            found.add(words);
            subcommands(sub.getValue(), words, found);
        }
    }

    private List<String> withRoots(List<String> command) {
        List<String> all = new ArrayList<>(roots);
        all.addAll(command);
        return all;
    }

    private Outcome javaJar(String... args) throws Exception {
        return javaJar(List.of(args));
    }

    /** {@code java -jar shimmer.jar ARGS}: no JVM option, as a user types it. */
    private Outcome javaJar(List<String> args) throws Exception {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "-jar", JAR.toString()));
        command.addAll(args);
        return start(command, temp);
    }

    private Outcome start(List<String> command, Path cwd) throws Exception {
        Path out = Files.createTempFile(temp, "out", ".log");
        Path err = Files.createTempFile(temp, "err", ".log");
        ProcessBuilder builder = new ProcessBuilder(command).directory(cwd.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectOutput(out.toFile())
                .redirectError(err.toFile());
        // The child must not inherit what the test JVM was started with (surefire's argLine grants native access).
        builder.environment().remove("JAVA_TOOL_OPTIONS");
        builder.environment().remove("JDK_JAVA_OPTIONS");
        builder.environment().put("JAVA_HOME", System.getProperty("java.home"));
        Process child = builder.start();
        boolean exited = child.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        if (!exited) {
            child.destroyForcibly().waitFor();
        }
        assertThat(exited).as("%s exits within %s; stderr: %s", command, TIMEOUT, Files.readString(err)).isTrue();
        Outcome outcome = new Outcome(child.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                Files.readString(err, StandardCharsets.UTF_8));
        Files.delete(out);
        Files.delete(err);
        return outcome;
    }

    private static void assertNoWarning(Outcome outcome) {
        assertThat(outcome.err().lines()).as("stderr").noneMatch(line -> line.contains("WARNING"));
        assertThat(outcome.out().lines()).as("stdout").noneMatch(line -> line.contains("WARNING"));
    }
}
