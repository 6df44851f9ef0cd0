package org.shimmer.runtime.linux.shim.local;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BooleanSupplier;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.runc.Runc;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.linux.testing.RuncWrapper;
import org.shimmer.runtime.linux.testing.Zombies;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;

/**
 * Issue 14: the local shim does {@code runc start} of a created container and {@code runc delete} of a stopped
 * one in the JVM when the runc is one whose layout it knows, with the same observable results (status, events,
 * output, nothing left: runc's state directory, its FIFO, its cgroups), and asks runc whenever runc would do more
 * than that. Which way it went is seen from a runc wrapper that records the commands it ran.
 */
class InJvmRuncStepsTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "in-jvm";
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path temp;

    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private final List<Bundle> bundles = new CopyOnWriteArrayList<>();

    @BeforeEach
    void startRuntime() {
        resources = new RuntimeResources("in-jvm-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
    }

    @AfterEach
    void stopRuntime() throws Exception {
        for (Bundle bundle : bundles) {
            runtime.delete(bundle.namespace(), bundle.id()).block(TIMEOUT);
        }
        resources.close();
        assertThat(Leaks.runcContainers(runcRoot())).as("runc containers").isEmpty();
    }

    @Test
    void aKnownRuncIsStartedAndDeletedInTheJvmWithRuncsResults() throws Exception {
        RuncWrapper runc = RuncWrapper.recording(temp.resolve("known"), null);

        List<String> commands = lifecycle(runc, spec -> spec);

        assertThat(commands).as("runc commands").contains("create", "kill").doesNotContain("start", "delete");
    }

    @Test
    void aRuncOfAnUnknownVersionIsAskedToStartAndDelete() throws Exception {
        RuncWrapper runc = RuncWrapper.recording(temp.resolve("unknown"), "runc version 9.9.0");

        List<String> commands = lifecycle(runc, spec -> spec);

        assertThat(commands).as("runc commands").contains("create", "start", "kill", "delete");
    }

    @Test
    void aRuncUpgradedInPlaceToAnUnknownVersionIsAskedToStartAndDelete() throws Exception {
        Path dir = temp.resolve("upgraded");
        RuncWrapper runc = RuncWrapper.recording(dir, null);
        assertThat(lifecycle(runc, spec -> spec)).as("runc commands of the known version")
                .doesNotContain("start", "delete");
        Files.delete(runc.marker());

        // The same path, now a runc whose start and delete do more (1.2 runs poststart hooks in start).
        RuncWrapper upgraded = RuncWrapper.recording(dir, "runc version 1.2.0");
        assertThat(upgraded.binary()).isEqualTo(runc.binary());
        List<String> commands = lifecycle(upgraded, spec -> spec);

        assertThat(commands).as("runc commands after the upgrade").contains("create", "start", "kill", "delete");
    }

    @Test
    void aContainerWithAPoststopHookIsDeletedByRuncWhichRunsTheHook() throws Exception {
        RuncWrapper runc = RuncWrapper.recording(temp.resolve("hook"), null);
        Path ran = temp.resolve("poststop-ran");

        List<String> commands = lifecycle(runc, spec -> {
            ObjectNode hook = spec.putObject("hooks").putArray("poststop").addObject();
            hook.put("path", "/bin/sh");
            hook.putArray("args").add("sh").add("-c").add("echo ran > " + ran);
            return spec;
        });

        assertThat(commands).as("runc commands").contains("delete").doesNotContain("start");
        assertThat(ran).as("the poststop hook ran").hasContent("ran");
    }

    @Test
    void aContainerInTheHostsPidNamespaceIsDeletedByRunc() throws Exception {
        RuncWrapper runc = RuncWrapper.recording(temp.resolve("hostpid"), null);

        List<String> commands = lifecycle(runc, spec -> {
            ArrayNode namespaces = (ArrayNode) spec.path("linux").path("namespaces");
            for (int i = namespaces.size() - 1; i >= 0; i--) {
                if (namespaces.get(i).path("type").asText().equals("pid")) {
                    namespaces.remove(i);
                }
            }
            return spec;
        });

        assertThat(commands).as("runc commands").contains("delete");
    }

    @Test
    void aStartAfterInitWasKilledFailsAsRuncStartFails() throws Exception {
        String id = "k-" + UUID.randomUUID().toString().substring(0, 8);
        Path bundle = BusyboxBundle.write(temp.resolve(id), "/bin/sleep", "600");
        RuncOptions options = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
        Runc runc = new Runc(options, NS, bundle, resources.io());
        Runc asked = new Runc(options.withBinaryName(RuncWrapper.recording(temp.resolve("asked"), "runc version 9.9.0")
                .binary()), NS, bundle, resources.io());
        int pid = runc.create(id, bundle.resolve("init.pid"), Runc.Stdio.NULL).block(TIMEOUT);
        LinuxCalls.kill(pid, 9);
        assertThat(Processes.awaitGone(pid, TIMEOUT)).as("init killed").isTrue();

        Throwable inJvm = failure(runc.start(id, pid));
        Throwable byRunc = failure(asked.start(id));

        assertThat(inJvm).isInstanceOf(FailedPreconditionException.class);
        assertThat(inJvm.getClass()).isEqualTo(byRunc.getClass());
        assertThat(inJvm.getMessage()).isEqualTo(byRunc.getMessage());
        assertThat(Files.exists(runcRoot().resolve(id).resolve("exec.fifo"), LinkOption.NOFOLLOW_LINKS))
                .as("the FIFO of a container that never started, runc's to delete").isTrue();
        runc.delete(id, true).block(TIMEOUT);
        assertThat(runcRoot().resolve(id)).doesNotExist();
        // No exit monitor watched it: the JVM, the subreaper, reaps it here.
        LinuxCalls.waitPid(pid, LinuxCalls.WEXITED);
    }

    @Test
    void aStartOrADeleteCancelledAtAnyMomentLeavesNothing() throws Exception {
        RuncWrapper runc = RuncWrapper.recording(temp.resolve("cancel"), null);
        Bundle bundle = bundle(spec("/bin/true"));
        ShimClient shim = bundle.newShimClient(ShimOpt.local(), options(runc)).block(TIMEOUT);
        Map<Integer, String> fdsBefore = Leaks.openFds();
        Random random = new Random(14);

        for (int i = 0; i < 12; i++) {
            shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
            cancelAfter(shim.start().then(), random.nextInt(40));
            // A start that began runs to its end; one cancelled before it began left the task created.
            if (shim.state().block(TIMEOUT).status() == TaskState.Status.CREATED) {
                shim.start().block(TIMEOUT);
            }
            assertThat(shim.awaitExit().block(TIMEOUT).status()).isZero();
            cancelAfter(shim.delete().then(), random.nextInt(40));
            if (exists(shim)) {
                shim.delete().block(TIMEOUT);
            }
            assertThat(runcRoot().resolve(bundle.id())).as("runc's state directory, lifecycle %d", i)
                    .doesNotExist();
        }

        shim.shutdown().block(TIMEOUT);
        assertThat(runcCommands(runc)).doesNotContain("start", "delete");
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5))).as("descriptors left open").isEmpty();
        assertThat(Zombies.awaitNone(Duration.ofSeconds(5))).as("zombie children of the JVM").isEmpty();
    }

    /**
     * One lifecycle of a container that prints and then sleeps, killed: the status, events, output and cleanup
     * every shim gives. Returns the command words runc was run with.
     */
    private List<String> lifecycle(RuncWrapper runc, UnaryOperator<ObjectNode> specEdit) throws Exception {
        Bundle bundle = bundle(specEdit.apply(spec("/bin/sh", "-c", "echo hello; exec sleep 600")));
        ShimClient shim = bundle.newShimClient(ShimOpt.local(), options(runc)).block(TIMEOUT);
        List<String> topics = new CopyOnWriteArrayList<>();
        Disposable events = shim.events().map(Envelope::topic).subscribe(topics::add);
        Map<Integer, String> fdsBefore = Leaks.openFds();
        Path out = temp.resolve(bundle.id() + ".out");
        Path state = runcRoot().resolve(bundle.id());

        shim.create(CreateOptions.of(Stdio.files(out, out))).block(TIMEOUT);
        List<Path> cgroups = new ArrayList<>();
        JSON.readTree(state.resolve("state.json").toFile()).path("cgroup_paths")
                .forEach(path -> cgroups.add(Path.of(path.asText())));
        assertThat(cgroups).as("cgroups runc made").isNotEmpty().allMatch(Files::isDirectory);
        int pid = shim.start().block(TIMEOUT);

        assertThat(shim.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.RUNNING);
        assertThat(Processes.isRunning(pid)).isTrue();
        assertThat(state.resolve("exec.fifo")).as("runc's exec FIFO once started").doesNotExist();
        awaitOutput(out, "hello\n");
        shim.kill(9, false).block(TIMEOUT);
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isEqualTo(137);
        ExitStatus deleted = shim.delete().block(TIMEOUT);
        assertThat(deleted.status()).isEqualTo(137);
        assertThat(deleted.pid()).isEqualTo(pid);

        assertThat(state).as("runc's state directory").doesNotExist();
        assertThat(cgroups).as("the container's cgroups").noneMatch(Files::exists);
        assertThat(Leaks.runcContainers(runcRoot())).as("runc list").isEmpty();
        assertThat(Files.readString(out)).isEqualTo("hello\n");
        shim.shutdown().block(TIMEOUT);
        awaitTrue(() -> topics.size() >= 4);
        events.dispose();
        assertThat(topics).containsExactly("/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete");
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5))).as("descriptors left open").isEmpty();
        assertThat(Zombies.awaitNone(Duration.ofSeconds(5))).as("zombie children of the JVM").isEmpty();
        assertThat(Leaks.awaitNoProcessesOf(temp, bundle.id(), Duration.ofSeconds(10))).as("processes left")
                .isEmpty();
        return runcCommands(runc);
    }

    /** The command word of each runc command the wrapper ran (its first argument that is not a global flag). */
    private static List<String> runcCommands(RuncWrapper runc) throws Exception {
        List<String> words = new ArrayList<>();
        if (!Files.exists(runc.marker())) {
            return words;
        }
        for (String line : Files.readAllLines(runc.marker())) {
            List<String> args = Arrays.asList(line.split(" "));
            for (int i = 0; i < args.size(); i++) {
                String arg = args.get(i);
                if (arg.equals("--root") || arg.equals("--log") || arg.equals("--log-format")
                        || arg.equals("--criu")) {
                    i++;
                } else if (!arg.startsWith("-")) {
                    words.add(arg);
                    break;
                }
            }
        }
        return words;
    }

    private static Throwable failure(Mono<Void> operation) {
        Throwable error = operation.then(Mono.<Throwable>empty()).onErrorResume(Mono::just).block(TIMEOUT);
        assertThat(error).as("a failure").isNotNull();
        return error;
    }

    private void cancelAfter(Mono<Void> operation, int millis) throws InterruptedException {
        Disposable running = operation.subscribe(done -> {}, error -> {});
        Thread.sleep(millis);
        running.dispose();
    }

    /** Whether init is still there, once whatever operation runs on it has ended. */
    private static boolean exists(ShimClient shim) {
        try {
            shim.state().block(TIMEOUT);
            return true;
        } catch (NotFoundException gone) {
            return false;
        }
    }

    private RuncOptions options(RuncWrapper runc) {
        return RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString()).withBinaryName(runc.binary());
    }

    private Path runcRoot() {
        return temp.resolve("runc").resolve(NS);
    }

    private ObjectNode spec(String... args) throws Exception {
        return (ObjectNode) JSON.readTree(BusyboxBundle.spec(Files.createDirectories(temp.resolve("specs")), args));
    }

    private Bundle bundle(JsonNode spec) throws Exception {
        String id = "j-" + UUID.randomUUID().toString().substring(0, 8);
        Bundle bundle = runtime.create(NS, id, JSON.writeValueAsBytes(spec)).block(TIMEOUT);
        BusyboxBundle.writeRootfs(bundle.rootfs());
        bundles.add(bundle);
        return bundle;
    }

    /** Output lands in a file with no signal to wait on: polled with a deadline. */
    private static void awaitOutput(Path file, String expected) throws Exception {
        awaitTrue(() -> {
            try {
                return Files.readString(file, UTF_8).equals(expected);
            } catch (IOException e) {
                return false;
            }
        });
    }

    private static void awaitTrue(BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!condition.getAsBoolean() && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertThat(condition.getAsBoolean()).as("condition within " + TIMEOUT).isTrue();
    }
}
