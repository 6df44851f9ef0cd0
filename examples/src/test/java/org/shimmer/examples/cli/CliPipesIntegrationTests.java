package org.shimmer.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.examples.host.BusyboxRootfs;
import org.shimmer.examples.host.StateRootCgroups;

/**
 * The CLI at the end of a pipe: a stdout closed under it ({@code | head -1}; the JVM ignores SIGPIPE, so only the
 * failed write tells) ends the command with a SIGPIPE's 141, and {@code -t -i} with a stdin that is no terminal is
 * refused before anything is created. In-process, real plugin, real runc.
 */
class CliPipesIntegrationTests {

    private static final long TIMEOUT_SECONDS = 60;

    @TempDir
    Path temp;

    private Path image;
    private List<String> global;

    @BeforeEach
    void setUp() throws IOException {
        image = BusyboxRootfs.write(temp.resolve("image"));
        global = List.of("--plugins", System.getProperty("shimmer.plugins.dir", "target/plugins"),
                "--state-root", temp.resolve("state").toString(), "--work-root", temp.resolve("work").toString());
    }

    @AfterEach
    void removeTheStateRootsEmptyCgroups() throws IOException {
        StateRootCgroups.removeEmptyAndListLeft(temp.resolve("state"));
    }

    /** A stdout whose reader went away: every write fails, as on a pipe whose reader exited. */
    private static PrintStream closedPipe() {
        return new PrintStream(new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                throw new IOException("Broken pipe");
            }

            @Override
            public void write(byte[] bytes, int offset, int length) throws IOException {
                throw new IOException("Broken pipe");
            }
        }, true, StandardCharsets.UTF_8);
    }

    private int cli(PrintStream out, ByteArrayOutputStream err, String... args) {
        List<String> all = new ArrayList<>(global);
        all.addAll(List.of(args));
        return new ShimmerCli(new ByteArrayInputStream(new byte[0]), out,
                new PrintStream(err, true, StandardCharsets.UTF_8), false).execute(all.toArray(String[]::new));
    }

    @Test
    void runWhoseStdoutIsClosedStopsTheContainerAndExitsAsSigpipeWould() throws Exception {
        for (String shim : List.of("local", "remote")) {
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            CompletableFuture<Integer> run = CompletableFuture.supplyAsync(() -> cli(closedPipe(), err, "run",
                    "--rm", "--shim", shim, "--rootfs", image.toString(), "yes-" + shim, "--", "/bin/sh", "-c",
                    // As yes, but leaving on the SIGTERM the closed pipe sends (PID 1 ignores it without a trap).
                    "trap 'exit 0' TERM; while :; do echo y; done"));

            assertThat(run.get(TIMEOUT_SECONDS, TimeUnit.SECONDS)).as(shim + ": " + err).isEqualTo(128 + 13);
        }
        assertNothingLeft();
    }

    /**
     * {@code run -t … | head -1} and {@code exec -t … | head -1}: the terminal's output is copied by its own loop,
     * which once wrote on into the closed pipe for ever, the container running and the CLI never returning.
     */
    @Test
    void runAndExecWithATerminalWhoseStdoutIsClosedStopTheProcessAndExitAsSigpipeWould() throws Exception {
        String flood = "trap 'exit 0' TERM; while :; do echo y; done";
        for (String shim : List.of("local", "remote")) {
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            CompletableFuture<Integer> run = CompletableFuture.supplyAsync(() -> cli(closedPipe(), err, "run", "-t",
                    "--rm", "--shim", shim, "--rootfs", image.toString(), "tty-yes-" + shim, "--", "/bin/sh", "-c",
                    flood));

            assertThat(run.get(TIMEOUT_SECONDS, TimeUnit.SECONDS)).as(shim + ": " + err).isEqualTo(128 + 13);
        }
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        assertThat(cli(quiet, err, "run", "-d", "--rootfs", image.toString(), "tty-ex", "--", "/bin/sleep", "100"))
                .as(err.toString()).isZero();
        try {
            CompletableFuture<Integer> exec = CompletableFuture.supplyAsync(() -> cli(closedPipe(), err, "exec",
                    "-t", "tty-ex", "/bin/sh", "-c", flood));

            assertThat(exec.get(TIMEOUT_SECONDS, TimeUnit.SECONDS)).as(err.toString()).isEqualTo(128 + 13);
            ByteArrayOutputStream ps = new ByteArrayOutputStream();
            assertThat(cli(new PrintStream(ps, true, StandardCharsets.UTF_8), err, "exec", "tty-ex", "/bin/busybox",
                    "ps")).as(err.toString()).isZero();
            assertThat(ps.toString(StandardCharsets.UTF_8)).as("the exec'd flood is gone").doesNotContain("echo y");
        } finally {
            assertThat(cli(quiet, err, "delete", "--force", "tty-ex")).as(err.toString()).isZero();
        }
        assertNothingLeft();
    }

    @Test
    void eventsWhoseStdoutIsClosedEndsAtItsFirstEvent() throws Exception {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        CompletableFuture<Integer> events = CompletableFuture.supplyAsync(() -> cli(closedPipe(), err, "events"));
        // The events stream may subscribe after a first run's events (it says nothing when it did): runs until one
        // reached it, up to a deadline. Five runs bounded it by count: a CLI slow to start its plugin host on a
        // loaded machine could miss them all. One that never sees an event still fails below.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
        for (int run = 0; !events.isDone() && System.nanoTime() < deadline; run++) {
            assertThat(cli(new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
                    new ByteArrayOutputStream(), "run", "--rm", "--rootfs", image.toString(), "ev-" + run, "--",
                    "/bin/true")).isZero();
            try {
                events.get(2, TimeUnit.SECONDS);
            } catch (TimeoutException notYet) {
                // another run
            }
        }
        assertThat(events.get(TIMEOUT_SECONDS, TimeUnit.SECONDS)).as(err.toString()).isEqualTo(128 + 13);
        assertNothingLeft();
    }

    @Test
    void statsWhoseStdoutIsClosedEnds() throws Exception {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        assertThat(cli(quiet, err, "run", "-d", "--rootfs", image.toString(), "st", "--", "/bin/sleep", "100"))
                .as(err.toString()).isZero();
        try {
            CompletableFuture<Integer> stats = CompletableFuture.supplyAsync(() -> cli(closedPipe(), err, "stats",
                    "st"));

            assertThat(stats.get(TIMEOUT_SECONDS, TimeUnit.SECONDS)).as(err.toString()).isEqualTo(128 + 13);
        } finally {
            assertThat(cli(quiet, err, "delete", "--force", "st")).as(err.toString()).isZero();
        }
        assertNothingLeft();
    }

    @Test
    void runTIWithAStdinThatIsNoTerminalIsRefusedBeforeAnythingIsCreated() throws Exception {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        List<String> all = new ArrayList<>(global);
        all.addAll(List.of("run", "-t", "-i", "--rm", "--rootfs", image.toString(), "tty-in", "--", "/bin/cat"));
        CompletableFuture<Integer> run = CompletableFuture.supplyAsync(() -> new ShimmerCli(
                new ByteArrayInputStream("hi\n".getBytes(StandardCharsets.UTF_8)),
                new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8), false).execute(all.toArray(String[]::new)));

        assertThat(run.get(TIMEOUT_SECONDS, TimeUnit.SECONDS)).isEqualTo(125);
        assertThat(err.toString(StandardCharsets.UTF_8)).isEqualTo("shimmer: the input device is not a TTY\n");
        assertThat(temp.resolve("state/default/tty-in")).doesNotExist();

        // exec -t -i from a pipe: refused the same way, before the container is even looked up.
        ByteArrayOutputStream execErr = new ByteArrayOutputStream();
        List<String> exec = new ArrayList<>(global);
        exec.addAll(List.of("exec", "-t", "-i", "tty-in", "/bin/cat"));
        assertThat(new ShimmerCli(new ByteArrayInputStream("hi\n".getBytes(StandardCharsets.UTF_8)),
                new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
                new PrintStream(execErr, true, StandardCharsets.UTF_8), false).execute(exec.toArray(String[]::new)))
                .isEqualTo(125);
        assertThat(execErr.toString(StandardCharsets.UTF_8)).isEqualTo("shimmer: the input device is not a TTY\n");
        assertNothingLeft();
    }

    private void assertNothingLeft() throws Exception {
        CliLeftovers.assertNoneUnder(temp);
    }
}
