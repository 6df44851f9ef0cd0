package org.shimmer.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.examples.host.BusyboxRootfs;
import org.shimmer.examples.host.PluginHost;
import org.shimmer.examples.host.StateRootCgroups;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;

/**
 * The CLI's inspection commands as a user runs them ({@code logs}, {@code wait}, {@code pause}, {@code resume},
 * {@code stats}, {@code inspect}, {@code events}, a read-only {@code ps}): real plugin zip, real runc, the remote
 * shim for detached containers, the local shim across processes.
 */
class CliOpsIntegrationTests {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    @TempDir
    Path temp;

    private Path image;
    private List<String> global;
    private final List<Process> spawned = new ArrayList<>();

    /** What one command printed and returned. */
    private record Outcome(int status, String out, String err) {}

    @BeforeEach
    void setUp() throws IOException {
        image = BusyboxRootfs.write(temp.resolve("image"));
        global = List.of("--plugins", pluginsDir().toString(), "--state-root", temp.resolve("state").toString(),
                "--work-root", temp.resolve("work").toString());
    }

    @AfterEach
    void stopSpawnedClisAndRemoveEmptyCgroups() throws Exception {
        for (Process cli : spawned) {
            cli.destroyForcibly();
            cli.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        }
        StateRootCgroups.removeEmptyAndListLeft(temp.resolve("state"));
    }

    @Test
    void logsPrintsADetachedContainersOutputAndFollowsItUntilItExits() throws Exception {
        Outcome run = cli("run", "-d", "--shim", "remote", "--rootfs", image.toString(), "talker", "--", "/bin/sh",
                "-c", "trap 'echo second; exit 3' USR1; echo first; sleep 60 & wait");
        assertThat(run.status()).as(run.err()).isZero();

        Process follow = spawn("logs", "-f", "talker");
        BufferedReader followed = lines(follow);
        assertThat(followed.readLine()).isEqualTo("first");
        assertThat(cli("logs", "talker")).isEqualTo(new Outcome(0, "first\n", ""));
        assertThat(cli("kill", "-s", "USR1", "talker").status()).isZero();

        assertThat(followed.readLine()).as("written after logs -f started").isEqualTo("second");
        assertThat(follow.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("ends with the container").isTrue();
        assertThat(follow.exitValue()).isZero();
        assertThat(followed.readLine()).isNull();
        Outcome waited = cli("wait", "talker");
        assertThat(waited).isEqualTo(new Outcome(3, "3\n", ""));

        assertThat(cli("delete", "talker").status()).isZero();
        assertThat(cli("logs", "talker").err()).startsWith("shimmer: ").contains("talker").contains("not found");
        assertNothingLeft();
    }

    @Test
    void aDetachedContainerPausesResumesShowsStatsAndInspectsAsJsonWhateverItsArgs() throws Exception {
        String nasty = "quote\" ctrl\u0001 new\nline \\ esc\u001b[31m";
        Outcome run = cli("run", "-d", "--shim", "remote", "--memory", "64m", "--rootfs", image.toString(), "busy",
                "--", "/bin/sh", "-c", "sleep 60 & wait", nasty);
        assertThat(run.status()).as(run.err()).isZero();

        assertThat(cli("pause", "busy").status()).isZero();
        assertThat(cli("ps").out()).containsPattern("busy +paused +\\d+");
        assertThat(cli("delete", "busy").err()).as("a paused container is resumed before it is killed")
                .isEqualTo("shimmer: container busy is paused; resume it (shimmer resume busy) and kill it first,"
                        + " or use delete --force\n");
        assertThat(cli("resume", "busy").status()).isZero();
        assertThat(cli("ps").out()).containsPattern("busy +running +\\d+");

        Outcome stats = cli("stats", "--no-stream", "busy");
        assertThat(stats.status()).as(stats.err()).isZero();
        assertThat(stats.out().lines().toList()).hasSize(2);
        assertThat(stats.out().lines().toList().get(1))
                .as("CPU %, CPU time, memory usage / limit, its share, pids (sh and sleep)")
                .matches("busy +\\d+\\.\\d% +\\d+\\.\\d{3}s +\\d+(\\.\\d)?[KM]?i?B / 64\\.0MiB +\\d+\\.\\d% +2( / \\d+)?");

        Outcome inspected = cli("inspect", "busy");
        assertThat(inspected.status()).as(inspected.err()).isZero();
        JsonNode json = Json.mapper().readTree(inspected.out());
        assertThat(json.path("id").asText()).isEqualTo("busy");
        assertThat(json.path("namespace").asText()).isEqualTo("default");
        assertThat(json.path("bundle").asText()).isEqualTo(temp.resolve("state/default/busy").toString());
        assertThat(json.path("status").asText()).isEqualTo("running");
        assertThat(json.path("pid").asInt()).isPositive();
        assertThat(json.path("shim").path("kind").asText()).isEqualTo("REMOTE");
        assertThat(json.path("shim").path("pid").asInt()).isPositive();
        assertThat(json.path("exit").isNull()).isTrue();
        assertThat(json.path("spec").path("process").path("args").get(3).asText()).isEqualTo(nasty);

        assertThat(cli("kill", "-s", "KILL", "busy").status()).isZero();
        assertThat(cli("wait", "busy")).isEqualTo(new Outcome(137, "137\n", ""));
        JsonNode stopped = Json.mapper().readTree(cli("inspect", "busy").out());
        assertThat(stopped.path("status").asText()).isEqualTo("stopped");
        assertThat(stopped.path("exit").path("status").asInt()).isEqualTo(137);
        assertThat(stopped.path("exit").path("exitedAt").asText()).isNotEmpty();
        assertThat(cli("delete", "busy").status()).isZero();
        assertNothingLeft();
    }

    /**
     * {@code stats} streams until the container stops, then ends with status 0, also when another CLI removed it
     * by force. It once ended with 125 and Reactor's "block() … not supported in thread shimmer-ttrpc-nio-2": the
     * check that the container had stopped blocked on the thread that brought the failed sample.
     */
    @Test
    void statsStreamsUntilTheContainerStopsOrIsRemovedAndThenEndsWithStatusZero() throws Exception {
        for (List<String> stop : List.of(List.of("kill", "-s", "KILL"), List.of("delete", "--force"))) {
            String id = "streamed-" + stop.getFirst();
            Outcome run = cli("run", "-d", "--rootfs", image.toString(), id, "--", "/bin/sh", "-c", "sleep 60 & wait");
            assertThat(run.status()).as(run.err()).isZero();
            Path errors = temp.resolve("cli-stderr-" + spawned.size() + ".log");
            Process stats = spawn("stats", id);
            BufferedReader streamed = lines(stats);
            assertThat(streamed.readLine()).startsWith("ID ");
            assertThat(streamed.readLine()).as("a first sample").startsWith(id + " ");

            List<String> stopIt = new ArrayList<>(stop);
            stopIt.add(id);
            assertThat(cli(stopIt.toArray(String[]::new)).status()).isZero();

            assertThat(stats.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as(stop + ": stats ends").isTrue();
            // The spawned CLI logs PF4J's start on stderr (its class path has slf4j-simple): no line of ours.
            assertThat(Files.readString(errors)).as(stop + ": stderr").doesNotContain("shimmer:");
            assertThat(stats.exitValue()).as(stop.toString()).isZero();
            streamed.close();
            if (stop.getFirst().equals("kill")) {
                assertThat(cli("delete", id).status()).isZero();
            }
        }
        assertNothingLeft();
    }

    /**
     * A wait on a container another CLI removes by force fails with 125 saying so: it printed the API's "detached
     * from its shim (pid N); connect() again to reach it", which no CLI user can act on. The shim is stopped first:
     * the forced delete's SIGKILL then reaches it before it can answer the wait with the container's exit, which it
     * otherwise sometimes does (137, as docker's wait says).
     */
    @Test
    void waitOnAContainerRemovedByForceFailsWith125SayingItWasRemoved() throws Exception {
        Outcome run = cli("run", "-d", "--shim", "remote", "--rootfs", image.toString(), "doomed", "--", "/bin/sh",
                "-c", "sleep 60 & wait");
        assertThat(run.status()).as(run.err()).isZero();
        long shimPid = Json.mapper().readTree(cli("inspect", "doomed").out()).path("shim").path("pid").asLong();
        int sockets = sockets(shimPid);
        Path errors = temp.resolve("cli-stderr-" + spawned.size() + ".log");

        Process waiting = spawn("wait", "doomed");
        // A JVM and the plugin start first: generous, the machine may be loaded.
        long deadline = System.nanoTime() + Duration.ofMinutes(5).toNanos();
        while (sockets(shimPid) <= sockets) {
            assertThat(waiting.isAlive()).as("wait runs").isTrue();
            assertThat(System.nanoTime()).as("wait connects to the shim").isLessThan(deadline);
            Thread.sleep(50);
        }
        assertThat(new ProcessBuilder("kill", "-STOP", Long.toString(shimPid)).start().waitFor()).isZero();
        assertThat(cli("delete", "--force", "doomed").status()).isZero();

        assertThat(waiting.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("wait ends").isTrue();
        assertThat(waiting.exitValue()).isEqualTo(ExitCodes.SHIMMER);
        assertThat(new String(waiting.getInputStream().readAllBytes(), StandardCharsets.UTF_8)).isEmpty();
        assertThat(Files.readString(errors)).contains("shimmer: container doomed was removed while waiting for it"
                + " (delete --force): its exit status is unknown\n").doesNotContain("connect()");
        assertNothingLeft();
    }

    /** An id is shown escaped, on one line: a newline in it was printed joined with "; ". */
    @Test
    void aBadIdIsShownEscapedOnOneLine() {
        Outcome waited = cli("wait", "a\nb; c\"d");
        assertThat(waited.status()).isEqualTo(ExitCodes.SHIMMER);
        assertThat(waited.err()).startsWith("shimmer: invalid id \"a\\nb; c\\\"d\": ").endsWith("\n")
                .hasLineCount(1);
    }

    /** How many sockets process {@code pid} has open. */
    private static int sockets(long pid) throws IOException {
        int count = 0;
        try (Stream<Path> fds = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            for (Path fd : fds.toList()) {
                try {
                    if (Files.readSymbolicLink(fd).toString().startsWith("socket:")) {
                        count++;
                    }
                } catch (IOException closed) {
                    // Closed while listed.
                }
            }
        }
        return count;
    }

    @Test
    void eventsInAnotherProcessShowALocalShimRunAsJsonLinesOnlyWhereTheFiltersMatch() throws Exception {
        Process events = spawn("events", "--filter", "container=seen", "--filter", "topic=/tasks/*,namespace=default");
        awaitEventsServer(events);

        assertThat(cli("run", "--rm", "--shim", "local", "--rootfs", image.toString(), "unseen", "--", "/bin/true")
                .status()).isZero();
        assertThat(cli("run", "--rm", "--shim", "local", "--rootfs", image.toString(), "seen", "--", "/bin/sh",
                "-c", "exit 4").status()).isEqualTo(4);

        BufferedReader printed = lines(events);
        List<JsonNode> seen = new ArrayList<>();
        for (String line; (line = printed.readLine()) != null; ) {
            JsonNode event = Json.mapper().readTree(line);
            seen.add(event);
            if (event.path("topic").asText().equals("/tasks/delete")) {
                break;
            }
        }
        assertThat(seen).extracting(event -> event.path("topic").asText())
                .containsExactly("/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete");
        assertThat(seen).allSatisfy(event -> {
            assertThat(event.path("namespace").asText()).isEqualTo("default");
            assertThat(event.path("event").path("containerId").asText()).isEqualTo("seen");
        });
        assertThat(seen.get(0).path("event").path("rootfs").isArray()).as("data, not a toString()").isTrue();
        assertThat(seen.get(2).path("event").path("exitStatus").asInt()).isEqualTo(4);
        events.destroy();
        assertThat(events.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        assertNothingLeft();
    }

    @Test
    void psOfABundleWhoseShimDiedChangesNothingOnDisk() throws Exception {
        assertThat(cli("run", "-d", "--shim", "remote", "--rootfs", image.toString(), "orphan", "--",
                "/bin/sleep", "60").status()).isZero();
        long shimPid = Json.mapper().readTree(cli("inspect", "orphan").out()).path("shim").path("pid").asLong();
        ProcessHandle shim = ProcessHandle.of(shimPid).orElseThrow();
        Processes.signal(shimPid, "KILL");
        shim.onExit().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        Map<String, String> before = tree();

        String ps = cli("ps").out();
        try (PluginHost host = PluginHost.start(pluginsDir())) {
            RuntimePlugin runtime = host.runtime().withConfig(new RuntimeConfig(temp.resolve("state"),
                    temp.resolve("work")));
            assertThat(runtime.taskState("default", "orphan").blockOptional(TIMEOUT)).as("no shim answers")
                    .isEmpty();
            BundleInspection seen = runtime.inspect("default", "orphan").block(TIMEOUT);
            assertThat(seen.shim()).hasValueSatisfying(found -> assertThat(found.alive()).isFalse());
        }
        Outcome inspected = cli("inspect", "orphan");

        assertThat(tree()).as("the state and work roots, with mtimes").isEqualTo(before);
        assertThat(ps).containsPattern("orphan +running \\(no shim\\) +\\d+");
        assertThat(Json.mapper().readTree(inspected.out()).path("shim").path("alive").asBoolean()).isFalse();
        assertThat(cli("delete", "--force", "orphan").status()).isZero();
        assertNothingLeft();
    }

    /**
     * {@code events}, {@code stats} and {@code wait} run until the user stops them, with Ctrl-C or SIGTERM. The JVM
     * then died of the signal without stopping the plugin, and the events socket each served (for the remote shims'
     * events) stayed behind, stale. Now each ends with 128 + the signal, having stopped the plugin.
     */
    @Test
    void eventsStatsAndWaitStoppedBySignalsExitAsTheSignalAndLeaveNoSocket() throws Exception {
        assertThat(cli("run", "-d", "--rootfs", image.toString(), "watched", "--", "/bin/sleep", "60").status())
                .isZero();
        Path socket = temp.resolve("state/.shimmer/events.sock");
        Map<String, String> signals = Map.of("events", "TERM", "stats", "INT", "wait", "TERM");
        try {
            for (String command : List.of("events", "stats", "wait")) {
                Process waiting = command.equals("events") ? spawn(command) : spawn(command, "watched");
                awaitEventsServer(waiting);
                if (command.equals("stats")) {
                    // Its header once it has its shim: the loop the signal must end is running.
                    assertThat(lines(waiting).readLine()).startsWith("ID");
                }
                Processes.signal(waiting.pid(), signals.get(command));

                assertThat(waiting.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as(command + " ended").isTrue();
                assertThat(waiting.exitValue()).as(command)
                        .isEqualTo(signals.get(command).equals("INT") ? 130 : 143);
                assertThat(Files.exists(socket, LinkOption.NOFOLLOW_LINKS)).as(command + " left " + socket)
                        .isFalse();
            }
        } finally {
            assertThat(cli("delete", "--force", "watched").status()).isZero();
        }
        assertNothingLeft();
    }

    private static Path pluginsDir() {
        return Path.of(System.getProperty("shimmer.plugins.dir", "target/plugins"));
    }

    private Outcome cli(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        List<String> all = new ArrayList<>(global);
        all.addAll(List.of(args));
        int status = new ShimmerCli(new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8)).execute(all.toArray(String[]::new));
        return new Outcome(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /** The CLI as its own process, its main class on this test's class path. */
    private Process spawn(String... args) throws IOException {
        List<String> command = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                ShimmerCli.class.getName()));
        command.addAll(global);
        command.addAll(List.of(args));
        Process cli = new ProcessBuilder(command)
                .redirectError(temp.resolve("cli-stderr-" + spawned.size() + ".log").toFile()).start();
        spawned.add(cli);
        return cli;
    }

    private static BufferedReader lines(Process cli) {
        return new BufferedReader(new InputStreamReader(cli.getInputStream(), StandardCharsets.UTF_8));
    }

    /** Until {@code events} serves the state root's events socket; it prints nothing before an event. */
    private void awaitEventsServer(Process events) throws Exception {
        Path socket = temp.resolve("state/.shimmer/events.sock");
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) {
            assertThat(events.isAlive()).as("events runs").isTrue();
            assertThat(System.nanoTime()).as(socket + " bound").isLessThan(deadline);
            // Bounded by its exit, the one thing to wake on; the socket's appearance has no signal.
            events.waitFor(10, TimeUnit.MILLISECONDS);
        }
    }

    /** Every entry of the state and work roots with its type, size and mtime, links not followed. */
    private Map<String, String> tree() throws IOException {
        Map<String, String> entries = new TreeMap<>();
        for (Path root : List.of(temp.resolve("state"), temp.resolve("work"))) {
            try (Stream<Path> walk = Files.walk(root)) {
                for (Path path : walk.toList()) {
                    BasicFileAttributes attributes = Files.readAttributes(path, BasicFileAttributes.class,
                            LinkOption.NOFOLLOW_LINKS);
                    entries.put(path.toString(), (attributes.isDirectory() ? "d" : attributes.isSymbolicLink() ? "l"
                            : attributes.isOther() ? "o" : "f") + " " + attributes.size() + " "
                            + attributes.lastModifiedTime().toInstant());
                }
            }
        }
        return entries;
    }

    /** No bundle, runc container, mount or process of this test's state root. */
    private void assertNothingLeft() throws Exception {
        assertThat(cli("ps").out().lines()).as("no bundle listed").hasSize(1);
        CliLeftovers.assertNoneUnder(temp);
    }
}
