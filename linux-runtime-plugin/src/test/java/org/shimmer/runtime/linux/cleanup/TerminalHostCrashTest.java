package org.shimmer.runtime.linux.cleanup;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.spec.CgroupPaths;
import org.shimmer.runtime.linux.spec.CgroupsLeft;
import org.shimmer.runtime.linux.sys.MountTable;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.linux.testing.Zombies;

/**
 * A host killed with SIGKILL while the local shim's console socket waits for the master of init's terminal (runc
 * create runs, held in a {@code createRuntime} hook): the next host's forced delete leaves no console socket, for a
 * bundle whose work directory is short and for one whose socket path would not fit in {@code sun_path} (a long id,
 * as containerd's 64-digit ones).
 */
class TerminalHostCrashTest {

    private static final Duration TIMEOUT = HostCrashTest.TIMEOUT;
    private static final String NS = "crash-tty";
    private static final String RUN = UUID.randomUUID().toString().substring(0, 8);

    @TempDir
    Path temp;

    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private Path image;

    @BeforeEach
    void setUp() throws Exception {
        resources = new RuntimeResources("tty-crash-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
        image = Files.createDirectories(temp.resolve("image"));
        BusyboxBundle.writeRootfs(image);
    }

    @AfterEach
    void tearDown() throws Exception {
        try {
            assertThat(MountTable.under(List.of(temp))).as("mounts left").isEmpty();
            assertThat(HostCrashTest.processesMentioning(temp.toString())).as("processes left").isEmpty();
            assertThat(Zombies.awaitNone(TIMEOUT)).as("zombie children of the JVM").isEmpty();
        } finally {
            resources.close();
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {16, Identifiers.MAX_LENGTH})
    void aHostKilledWhileTheConsoleSocketWaitsLeavesNoSocketAfterTheForcedDelete(int idLength) throws Exception {
        String id = ("tty-" + RUN + "-" + "x".repeat(idLength)).substring(0, idLength);
        Path hookPid = temp.resolve("hook.pid");
        String cgroup = CgroupPaths.of(temp.resolve("state"), NS, id);
        Path spec = writeSpec(id, cgroup, hookPid);
        Process host = CrashingHost.start(temp, "local-terminal", spec, image, NS, id, "unused",
                temp.resolve("host-" + id + ".log"));
        long hook = 0;
        Path directory = null;
        try {
            awaitFile(hookPid);
            hook = Long.parseLong(Files.readString(hookPid).strip());
            String socket = consoleSocketOfRuncCreate(id).orElseThrow(() -> new AssertionError(
                    "no runc create with --console-socket for " + id));
            // Where the socket really is, whichever way its path names it.
            directory = Path.of(socket).getParent().toRealPath();
            assertThat(directory.resolve("s")).as("the console socket, listening").exists();

            host.destroyForcibly();
            assertThat(host.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
            runtime.forceDelete(NS, id).block(TIMEOUT);

            assertThat(directory).as("the console socket's directory, after the forced delete").doesNotExist();
            assertThat(Processes.awaitGone(hook, TIMEOUT)).as("the hook runc create ran").isTrue();
            assertThat(runtime.inspect(NS, id).block(TIMEOUT).present()).isFalse();
            assertThat(temp.resolve("runc").resolve(NS).resolve(id)).as("runc state").doesNotExist();
        } finally {
            host.destroyForcibly().waitFor();
            if (hook != 0) {
                ProcessHandle.of(hook).ifPresent(ProcessHandle::destroyForcibly);
            }
            CgroupsLeft.assertNoneUnder(temp.resolve("state"), NS);
            // A failed run must not leave its socket in a directory others share.
            if (directory != null && !directory.startsWith(temp)) {
                Files.deleteIfExists(directory.resolve("s"));
                Files.deleteIfExists(directory);
            }
        }
    }

    /** A busybox spec on a terminal whose {@code createRuntime} hook holds runc create until it is killed. */
    private Path writeSpec(String id, String cgroup, Path hookPid) throws Exception {
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(BusyboxBundle.spec(temp, "/bin/sh", "-c", "sleep 600"));
        ((ObjectNode) config.path("process")).put("terminal", true);
        ((ObjectNode) config.path("linux")).put("cgroupsPath", cgroup);
        config.putObject("hooks").putArray("createRuntime").addObject().put("path", "/bin/sh").putArray("args")
                .add("sh").add("-c").add("sleep 120 & echo $! > " + hookPid + ".partial; mv " + hookPid + ".partial "
                        + hookPid + "; wait");
        return Files.write(temp.resolve("config-" + id + ".json"), json.writeValueAsBytes(config));
    }

    /** The {@code --console-socket} argument of the runc create of {@code id}, while it runs. */
    private static Optional<String> consoleSocketOfRuncCreate(String id) throws IOException {
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(Path.of("/proc"), entry ->
                entry.getFileName().toString().chars().allMatch(Character::isDigit))) {
            for (Path entry : entries) {
                List<String> args;
                try {
                    args = List.of(new String(Files.readAllBytes(entry.resolve("cmdline")), StandardCharsets.UTF_8)
                            .split("\0"));
                } catch (IOException gone) {
                    continue;
                }
                int at = args.indexOf("--console-socket");
                if (args.contains("create") && args.contains(id) && at >= 0 && at + 1 < args.size()) {
                    return Optional.of(args.get(at + 1));
                }
            }
        }
        return Optional.empty();
    }

    /** The hook writes this file from its own process: no signal reaches us, so poll with a deadline. */
    private static void awaitFile(Path file) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!Files.exists(file)) {
            assertThat(System.nanoTime()).as(file + " appears").isLessThan(deadline);
            Thread.sleep(2);
        }
    }
}
