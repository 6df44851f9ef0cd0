package org.shimmer.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.shimmer.examples.cli.tty.Pty;
import org.shimmer.examples.cli.tty.Termios;
import org.shimmer.examples.host.BusyboxRootfs;
import org.shimmer.examples.host.StateRootCgroups;
import org.shimmer.runtime.shim.TerminalSize;

/**
 * The CLI's terminal mode as a user meets it: the CLI runs as a child whose stdio is the slave of a real
 * pseudo-terminal this test opened and made its controlling terminal ({@code setsid --ctty}), so the test types
 * on the master and reads what the user would see, window changes reach the CLI as SIGWINCH, and the terminal's
 * modes can be checked after the CLI is gone.
 */
class TerminalModeIntegrationTests {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    /**
     * How long the CLI may take to show the container's first output: a JVM start, the plugin's load and a
     * container's creation, seconds alone but over 20 s when the build box is loaded (load 26 measured on 2 cores).
     */
    private static final Duration STARTUP = Duration.ofSeconds(120);
    private static final TerminalSize SIZE = new TerminalSize(100, 30);
    /** The local modes a user's shell expects back: line editing, echo, Ctrl-C as SIGINT. */
    private static final int COOKED = Termios.ICANON | Termios.ECHO | Termios.ISIG;

    @TempDir
    Path temp;

    private Path image;
    private List<String> global;

    @BeforeEach
    void setUp() throws IOException {
        image = BusyboxRootfs.write(temp.resolve("image"));
        for (String applet : List.of("tty", "stty")) {
            Files.createSymbolicLink(image.resolve("bin").resolve(applet), Path.of("busybox"));
        }
        global = List.of("--plugins", System.getProperty("shimmer.plugins.dir", "target/plugins"),
                "--state-root", temp.resolve("state").toString(), "--work-root", temp.resolve("work").toString());
    }

    /** After a failure: what the test's CLI left (its container, mounts) goes, so the next test starts clean. */
    @AfterEach
    void removeWhatAFailedTestLeft() throws Exception {
        // A CLI or shim of a failed test (a remote shim was once found alive an hour after a run) goes first.
        for (long pid : Processes.mentioning(temp.toString())) {
            ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
        }
        try (Stream<Path> left = Files.isDirectory(temp.resolve("state/default"))
                ? Files.list(temp.resolve("state/default")) : Stream.empty()) {
            for (Path bundle : left.toList()) {
                cli("delete", "--force", bundle.getFileName().toString());
            }
        }
        StateRootCgroups.removeEmptyAndListLeft(temp.resolve("state"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void runTIGivesAShellATerminalThatFollowsOursAndRestoresOursAtTheEnd(String shim) throws Exception {
        Path slave;
        try (Pty pty = Pty.open(SIZE)) {
            slave = pty.slavePath();
            byte[] cooked = Termios.get(pty.slaveFd());
            Process cli = spawnOn(pty, "run", "-t", "-i", "--rm", "--shim", shim, "--rootfs", image.toString(),
                    "tty-" + shim, "--", "/bin/sh");
            try {
                pty.await("# ", STARTUP);
                assertThat(Termios.localFlags(Termios.get(pty.slaveFd())) & COOKED).as("ours is raw").isZero();

                pty.type("tty\n");
                pty.await(line("/dev/pts/\\d+"), TIMEOUT);
                pty.type("stty size\n");
                pty.await(line("30 100"), TIMEOUT);

                // The shell inside reports its own SIGWINCH: our resize reached the CLI, then the container's pty.
                pty.type("sh -c 'trap \"stty size; kill \\$!; exit\" WINCH; sleep 30 & echo ar\"\"med; wait'\n");
                pty.await(line("armed"), TIMEOUT);
                pty.resize(new TerminalSize(132, 43));
                pty.await(line("43 132"), TIMEOUT);
                pty.await("# ", TIMEOUT);

                // Ctrl-C is a byte for the container's line discipline: the foreground job dies, the shell lives.
                pty.type("sh -c 'echo sle\"\"eping; exec sleep 100'\n");
                pty.await(line("sleeping"), TIMEOUT);
                pty.type("\u0003");
                pty.await("# ", TIMEOUT);
                pty.type("echo alive\n");
                pty.await(line("alive"), TIMEOUT);

                pty.type("exit 3\n");
                assertThat(cli.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("the CLI exits").isTrue();
                assertThat(cli.exitValue()).as(pty.transcript()).isEqualTo(3);
            } finally {
                cli.destroyForcibly().waitFor();
            }
            assertThat(Termios.get(pty.slaveFd())).as("our terminal, exactly as it was").isEqualTo(cooked);
            assertThat(Termios.localFlags(Termios.get(pty.slaveFd())) & COOKED).isEqualTo(COOKED);
        }
        assertNothingLeft(slave);
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void sigtermMidSessionStopsTheContainerAndStillRestoresOurTerminal(String shim) throws Exception {
        Path slave;
        try (Pty pty = Pty.open(SIZE)) {
            slave = pty.slavePath();
            byte[] cooked = Termios.get(pty.slaveFd());
            Process cli = spawnOn(pty, "run", "-t", "-i", "--rm", "--shim", shim, "--rootfs", image.toString(),
                    "term-" + shim, "--", "/bin/sh", "-c",
                    "trap 'echo stopping; exit 143' TERM; echo ready; sleep 60 & wait");
            try {
                pty.await("ready\r\n", STARTUP);
                assertThat(Termios.localFlags(Termios.get(pty.slaveFd())) & COOKED).as("ours is raw").isZero();

                Processes.signal(cli.pid(), "TERM");

                pty.await("stopping\r\n", TIMEOUT);
                assertThat(cli.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("the CLI exits").isTrue();
                assertThat(cli.exitValue()).as(pty.transcript()).isEqualTo(143);
            } finally {
                cli.destroyForcibly().waitFor();
            }
            assertThat(Termios.get(pty.slaveFd())).as("our terminal, exactly as it was").isEqualTo(cooked);
        }
        assertNothingLeft(slave);
    }

    @Test
    void execTIIntoADetachedContainerGetsATerminalOfOurSize() throws Exception {
        assertThat(cli("run", "-d", "--shim", "remote", "--rootfs", image.toString(), "bg", "--", "/bin/sleep",
                "60")).isZero();
        Path slave;
        try (Pty pty = Pty.open(SIZE)) {
            slave = pty.slavePath();
            byte[] cooked = Termios.get(pty.slaveFd());
            Process cli = spawnOn(pty, "exec", "-t", "-i", "--exec-id", "e1", "bg", "/bin/sh");
            try {
                pty.await("# ", STARTUP);
                pty.type("tty\n");
                pty.await(line("/dev/pts/\\d+"), TIMEOUT);
                pty.type("stty size\n");
                pty.await(line("30 100"), TIMEOUT);
                pty.type("exit 4\n");
                assertThat(cli.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("the CLI exits").isTrue();
                assertThat(cli.exitValue()).as(pty.transcript()).isEqualTo(4);
            } finally {
                cli.destroyForcibly().waitFor();
            }
            assertThat(Termios.get(pty.slaveFd())).as("our terminal, exactly as it was").isEqualTo(cooked);
        } finally {
            cli("delete", "--force", "bg");
        }
        assertNothingLeft(slave);
    }

    @Test
    void runTWithoutATerminalOfOursStillGivesTheProcessOneOf80x24AndOneOutputStream() throws Exception {
        Process cli = new ProcessBuilder(java("run", "-t", "--rm", "--rootfs", image.toString(), "piped", "--",
                "/bin/sh", "-c", "tty; stty size; echo to-stderr >&2"))
                .redirectOutput(temp.resolve("piped.out").toFile())
                .redirectError(temp.resolve("piped.err").toFile()).start();
        try {
            cli.getOutputStream().close();
            // Bounded first: a CLI that hangs fails this test rather than hanging the test JVM.
            assertThat(cli.waitFor(STARTUP.toSeconds(), TimeUnit.SECONDS)).as("the CLI exits").isTrue();
        } finally {
            cli.destroyForcibly().waitFor();
        }
        String out = Files.readString(temp.resolve("piped.out"));
        assertThat(cli.exitValue()).as(out).isZero();
        assertThat(out).matches("/dev/pts/\\d+\r\n24 80\r\nto-stderr\r\n");
        assertThat(Files.readString(temp.resolve("piped.err")))
                .contains("shimmer: stdin is not a terminal; the container's terminal is 80x24\n");
        assertNothingLeft(Path.of("/dev/ptmx"));
    }

    /**
     * A whole line the terminal shows (an echoed command line that contains it does not match). Only {@code \n}
     * ends a line ({@code d}): with {@code \r\n} one terminator, {@code \r$} would never match.
     */
    private static String line(String regex) {
        return "(?md)^" + regex + "\r$";
    }

    /** The CLI as its own process, session leader with the pty's slave as its stdio and controlling terminal. */
    private Process spawnOn(Pty pty, String... args) throws IOException {
        List<String> command = new ArrayList<>(List.of("setsid", "--ctty"));
        command.addAll(java(args));
        File slave = pty.slavePath().toFile();
        return new ProcessBuilder(command)
                .redirectInput(ProcessBuilder.Redirect.from(slave))
                .redirectOutput(ProcessBuilder.Redirect.appendTo(slave))
                .redirectError(ProcessBuilder.Redirect.appendTo(slave))
                .start();
    }

    /** Runs the CLI without a terminal; returns its exit status, its output going to a log. */
    private int cli(String... args) throws IOException, InterruptedException {
        Process cli = new ProcessBuilder(java(args)).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(temp.resolve("cli.log").toFile())).start();
        try {
            assertThat(cli.waitFor(STARTUP.toSeconds(), TimeUnit.SECONDS)).as("the CLI exits").isTrue();
        } finally {
            cli.destroyForcibly().waitFor();
        }
        return cli.exitValue();
    }

    private List<String> java(String... args) {
        List<String> command = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                ShimmerCli.class.getName()));
        command.addAll(global);
        command.addAll(List.of(args));
        return command;
    }

    /** No bundle, runc container, mount, process, cgroup or pty descriptor of this test left. */
    private void assertNothingLeft(Path slave) throws Exception {
        CliLeftovers.assertNoneUnder(temp);
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            assertThat(fds.map(TerminalModeIntegrationTests::target))
                    .as("pty descriptors").noneMatch(target -> target.equals(slave.toString())
                            || target.equals("/dev/ptmx"));
        }
    }

    private static String target(Path fd) {
        try {
            return Files.readSymbolicLink(fd).toString();
        } catch (IOException gone) {
            return "";
        }
    }
}
