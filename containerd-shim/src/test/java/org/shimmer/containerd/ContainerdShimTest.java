package org.shimmer.containerd;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.google.protobuf.Any;
import com.google.protobuf.Empty;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.shimmer.containerd.PrivateContainerd.Result;
import org.shimmer.containerd.task.TaskService;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.shim.proto.CloseIORequest;
import org.shimmer.runtime.linux.shim.proto.CreateTaskRequest;
import org.shimmer.runtime.linux.shim.proto.CreateTaskResponse;
import org.shimmer.runtime.linux.shim.proto.DeleteRequest;
import org.shimmer.runtime.linux.shim.proto.DeleteResponse;
import org.shimmer.runtime.linux.shim.proto.ExecProcessRequest;
import org.shimmer.runtime.linux.shim.proto.KillRequest;
import org.shimmer.runtime.linux.shim.proto.Options;
import org.shimmer.runtime.linux.shim.proto.ResizePtyRequest;
import org.shimmer.runtime.linux.shim.proto.StateRequest;
import org.shimmer.runtime.linux.shim.proto.StartRequest;
import org.shimmer.runtime.linux.shim.proto.StartResponse;
import org.shimmer.runtime.linux.shim.proto.StateResponse;
import org.shimmer.runtime.linux.shim.proto.Status;
import org.shimmer.runtime.linux.shim.proto.WaitRequest;
import org.shimmer.runtime.linux.shim.proto.WaitResponse;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.shimmer.runtime.linux.ttrpc.CallOptions;
import org.shimmer.runtime.linux.ttrpc.StatusCode;
import org.shimmer.runtime.linux.ttrpc.TtrpcClient;
import org.shimmer.runtime.linux.ttrpc.TtrpcConnection;
import org.shimmer.runtime.linux.ttrpc.TtrpcStatusException;

/**
 * Issue 15: real containerd (a private one) runs containers through {@code containerd-shim-shimmer-v1} as
 * {@code ctr} drives it, with real runc: containerd is the judge of the wire and of the task semantics. Each test
 * ends with nothing of its containers left: no task, no runc state, no mount, no child of the daemon.
 */
class ContainerdShimTest {

    private static PrivateContainerd containerd;

    @BeforeAll
    static void startContainerd() throws Exception {
        containerd = new PrivateContainerd();
    }

    @AfterAll
    static void stopContainerd() throws Exception {
        if (containerd != null) {
            containerd.close();
        }
    }

    @AfterEach
    void nothingLeft() throws Exception {
        assertThat(containerd.ctr("task", "ls").stdout().lines().skip(1).toList()).as("tasks").isEmpty();
        assertThat(containerd.runcState()).as("runc state").isEmpty();
        assertThat(containerd.mounts()).as("mounts").isEmpty();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (!containerd.daemonChildren().isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertThat(containerd.daemonChildren()).as("the daemon's children").isEmpty();
        assertThat(containerd.daemons()).as("daemons").hasSizeLessThanOrEqualTo(1);
    }

    @Test
    void runRmReportsTheContainersExitStatusAndBothOutputs() throws Exception {
        Result result = containerd.runContainer(List.of("--rm"), "rm1", "/bin/sh", "-c",
                "echo to-out; echo to-err >&2; exit 7");

        assertThat(result.status()).as("%s", result).isEqualTo(7);
        assertThat(result.stdout()).isEqualTo("to-out\n");
        assertThat(result.stderr()).contains("to-err\n");
        assertThat(containerd.ctr("container", "ls", "-q").stdout()).doesNotContain("rm1");

        Result success = containerd.runContainer(List.of("--rm"), "rm2", "/bin/echo", "fine");
        assertThat(success.status()).as("%s", success).isZero();
        assertThat(success.stdout()).isEqualTo("fine\n");

        // Killed from outside (the container's init ignores its own SIGKILL): 128 + 9, as docker and ctr say.
        CompletableFuture<Result> killed = CompletableFuture.supplyAsync(() -> {
            try {
                return containerd.runContainer(List.of("--rm"), "rm3", "/bin/sleep", "1000");
            } catch (IOException | InterruptedException e) {
                throw new IllegalStateException(e);
            }
        }, runnable -> Thread.ofPlatform().start(runnable));
        containerd.awaitStatus("rm3", "RUNNING");
        assertThat(containerd.ctr("task", "kill", "-s", "KILL", "rm3").status()).isZero();
        assertThat(killed.get(30, TimeUnit.SECONDS).status()).as("%s", killed.get()).isEqualTo(137);
    }

    @Test
    void stdinReachesTheContainerAndItsEndEndsIt() throws Exception {
        // ctr asks for the end of stdin (CloseIO) only once the task exists: input written before that never
        // ends, under containerd's runc shim as well. So the test writes once the task runs.
        Process ctr = new ProcessBuilder(containerd.ctrCommand(containerd.runArgs(List.of("--rm"), "in1",
                "/bin/sh", "-c", "wc -c; echo done"))).start();
        CompletableFuture<String> out = PrivateContainerd.read(ctr.getInputStream());
        CompletableFuture<String> err = PrivateContainerd.read(ctr.getErrorStream());
        containerd.awaitStatus("in1", "RUNNING");
        byte[] input = "x".repeat(100_000).getBytes(StandardCharsets.US_ASCII);
        try (OutputStream stdin = ctr.getOutputStream()) {
            stdin.write(input);
        }
        assertThat(ctr.waitFor(30, TimeUnit.SECONDS)).as("ctr ended: %s", err).isTrue();
        assertThat(ctr.exitValue()).as("%s", err.join()).isZero();
        assertThat(out.join()).isEqualTo("100000\ndone\n");
    }

    @Test
    void aDetachedTaskExecsListsPausesResumesReportsMetricsAndIsKilledAndDeleted() throws Exception {
        Result started = containerd.runContainer(List.of("-d"), "d1", "/bin/sleep", "1000");
        assertThat(started.status()).as("%s", started).isZero();
        containerd.awaitStatus("d1", "RUNNING");

        Result exec = containerd.ctr("task", "exec", "--exec-id", "e1", "d1", "/bin/sh", "-c",
                "echo in-exec; echo exec-err >&2; exit 4");
        assertThat(exec.status()).as("%s", exec).isEqualTo(4);
        assertThat(exec.stdout()).isEqualTo("in-exec\n");
        assertThat(exec.stderr()).contains("exec-err");

        Result ps = containerd.ctr("task", "ps", "d1");
        assertThat(ps.status()).as("%s", ps).isZero();
        String initPid = containerd.ctr("task", "ls").stdout().lines().filter(line -> line.startsWith("d1"))
                .findFirst().orElseThrow().trim().split("\\s+")[1];
        assertThat(ps.stdout()).contains(initPid);

        assertThat(containerd.ctr("task", "pause", "d1").status()).isZero();
        assertThat(containerd.taskStatus("d1")).contains("PAUSED");
        assertThat(Files.readString(Path.of("/proc", initPid, "status"))).containsPattern("State:\\s+[DST]");
        assertThat(containerd.ctr("task", "resume", "d1").status()).isZero();
        assertThat(containerd.taskStatus("d1")).contains("RUNNING");

        Result metrics = containerd.ctr("task", "metrics", "d1");
        assertThat(metrics.status()).as("%s", metrics).isZero();
        assertThat(metrics.stdout()).containsPattern("pids.current\\s+1").contains("memory.usage_in_bytes");

        Result running = containerd.ctr("task", "delete", "d1");
        assertThat(running.status()).as("a running task is not deleted").isNotZero();
        assertThat(running.stderr()).contains("must be stopped");

        assertThat(containerd.ctr("task", "kill", "-s", "KILL", "d1").status()).isZero();
        containerd.awaitStatus("d1", "STOPPED");
        Result again = containerd.ctr("task", "kill", "-s", "KILL", "d1");
        assertThat(again.status()).as("killing an exited task").isNotZero();
        assertThat(again.stderr()).contains("not found");
        assertThat(containerd.ctr("task", "delete", "d1").stdout()).isEmpty();
        assertThat(containerd.ctr("container", "delete", "d1").status()).isZero();
    }

    @Test
    void metricsHaveMemoryStatsCountersTheKernelsLimitsAndEachCpusUsageAsRuncsShimAnswers() throws Exception {
        // CRI's working set is the usage less total_inactive_file, which was always 0 here: the 8 MiB of page cache
        // this task writes counted as its working set (kubelet evicts by it). A memory limit not set read as 0,
        // where runc's shim answers the kernel's largest value (CRI's available bytes then went below zero).
        Path written = containerd.rootfs.resolve("tmp/m1-written");
        Path cache = containerd.rootfs.resolve("tmp/m1-cache");
        assertThat(containerd.runContainer(List.of("-d", "--memory-limit", "67108864"), "m1", "/bin/sh", "-c",
                "head -c 8m /dev/zero > /tmp/m1-cache && touch /tmp/m1-written; sleep 1000").status()).isZero();
        assertThat(containerd.runContainer(List.of("-d"), "m2", "/bin/sleep", "1000").status()).isZero();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (!Files.exists(written)) {
                assertThat(System.nanoTime()).as("the cache was written").isLessThan(deadline);
                Thread.sleep(50);
            }
            JsonNode limited = metrics("m1");
            JsonNode memory = limited.path("memory");
            assertThat(memory.path("total_inactive_file").asLong() + memory.path("total_active_file").asLong())
                    .as("%s", memory).isGreaterThanOrEqualTo(8L << 20);
            assertThat(memory.path("total_pg_fault").asLong()).as("%s", memory).isPositive();
            assertThat(memory.path("hierarchical_memory_limit").asLong()).as("%s", memory).isEqualTo(67108864L);
            assertThat(memory.path("usage").path("limit").asLong()).isEqualTo(67108864L);
            assertThat(limited.path("cpu").path("usage").path("per_cpu")).as("%s", limited.path("cpu"))
                    .hasSize(Runtime.getRuntime().availableProcessors());
            JsonNode unlimited = metrics("m2").path("memory");
            assertThat(unlimited.path("usage").path("limit").bigIntegerValue()).as("%s", unlimited)
                    .isGreaterThan(java.math.BigInteger.ONE.shiftLeft(62));
        } finally {
            for (String id : List.of("m1", "m2")) {
                assertThat(containerd.ctr("task", "kill", "-s", "KILL", id).status()).isZero();
                containerd.awaitStatus(id, "STOPPED");
                assertThat(containerd.ctr("task", "delete", id).status()).isZero();
                assertThat(containerd.ctr("container", "delete", id).status()).isZero();
            }
            Files.deleteIfExists(written);
            Files.deleteIfExists(cache);
        }
    }

    @Test
    void aResizeOfAProcessWithoutATerminalIsAnsweredAsRuncsShimAnswersIt() throws Exception {
        // runc's shim answers a resize of a process that has no terminal with success; ours answered
        // FAILED_PRECONDITION while the process ran.
        Map<String, List<String>> answers = answersOfBothShims((shim, id) -> {
            assertThat(containerd.ctr("task", "exec", "-d", "--exec-id", "x", id, "/bin/sleep", "1000").status())
                    .isZero();
            List<String> resized = new ArrayList<>();
            for (String execId : List.of("", "x", "nope")) {
                resized.add(answer(shim.call(TaskService.SERVICE, "ResizePty", ResizePtyRequest.newBuilder().setId(id)
                        .setExecId(execId).setWidth(100).setHeight(30).build(), Empty.parser(), call())));
            }
            return resized;
        });
        assertThat(answers.get(PrivateContainerd.RUNTIME)).isEqualTo(List.of("OK", "OK", "NOT_FOUND"))
                .isEqualTo(answers.get(RUNC_RUNTIME));
    }

    @Test
    void signalZeroIsAnsweredAsRuncsShimAnswersIt() throws Exception {
        // kill(2)'s check that a process is there: runc's shim answers signal 0 as any other, sending nothing; ours
        // refused it as an invalid signal (INVALID_ARGUMENT) whatever the process's state.
        Map<String, List<String>> answers = answersOfBothShims((shim, id) -> {
            List<String> checked = new ArrayList<>();
            checked.add(answer(kill(shim, id, "", 0, false)));
            checked.add(answer(kill(shim, id, "", 0, true)));
            shim.call(TaskService.SERVICE, "Exec", ExecProcessRequest.newBuilder().setId(id).setExecId("x")
                    .setSpec(processSpec("/bin/sleep", "1000")).build(), Empty.parser(), call()).block();
            checked.add(answer(kill(shim, id, "x", 0, false)));
            shim.call(TaskService.SERVICE, "Start", StartRequest.newBuilder().setId(id).setExecId("x").build(),
                    StartResponse.parser(), call()).block();
            checked.add(answer(kill(shim, id, "x", 0, false)));
            kill(shim, id, "x", 9, false).block();
            shim.call(TaskService.SERVICE, "Wait", WaitRequest.newBuilder().setId(id).setExecId("x").build(),
                    WaitResponse.parser(), call()).block();
            checked.add(answer(kill(shim, id, "x", 0, false)));
            shim.call(TaskService.SERVICE, "Delete", DeleteRequest.newBuilder().setId(id).setExecId("x").build(),
                    DeleteResponse.parser(), call()).block();
            kill(shim, id, "", 9, false).block();
            shim.call(TaskService.SERVICE, "Wait", WaitRequest.newBuilder().setId(id).build(), WaitResponse.parser(),
                    call()).block();
            checked.add(answer(kill(shim, id, "", 0, false)));
            checked.add(answer(kill(shim, id, "", 0, true)));
            return checked;
        });
        assertThat(answers.get(PrivateContainerd.RUNTIME)).isEqualTo(List.of("OK", "OK", "FAILED_PRECONDITION", "OK",
                "NOT_FOUND", "NOT_FOUND", "OK")).isEqualTo(answers.get(RUNC_RUNTIME));
    }

    private static final String RUNC_RUNTIME = "io.containerd.runc.v2";

    /** A call's options: containerd's namespace, and time enough. */
    private static CallOptions call() {
        return CallOptions.defaults().withTimeout(Duration.ofSeconds(20)).withNamespace(containerd.namespace);
    }

    /** Requests to the shim of task {@code id}, each answer as {@link #answer} names it. */
    private interface Questions {
        List<String> answers(TtrpcConnection shim, String id) throws Exception;
    }

    /** What {@code ask} answers for a running {@code sleep} task of runc's shim, then of ours, by runtime. */
    private static Map<String, List<String>> answersOfBothShims(
            Questions ask) throws Exception {
        Map<String, List<String>> answers = new java.util.LinkedHashMap<>();
        for (String runtime : List.of(RUNC_RUNTIME, PrivateContainerd.RUNTIME)) {
            String id = runtime.equals(RUNC_RUNTIME) ? "same-runc" : "same-ours";
            assertThat(containerd.runContainer(List.of("-d", "--runtime", runtime), id, "/bin/sleep", "1000")
                    .status()).isZero();
            try (RuntimeResources resources = new RuntimeResources("same-answers-test-")) {
                String address = Files.readString(containerd.work.resolve("state/io.containerd.runtime.v2.task/"
                        + containerd.namespace + "/" + id + "/address"));
                TtrpcConnection shim = TtrpcClient.create().socket(Path.of(address.substring("unix://".length())))
                        .runOn(resources.loops()).connect().block(Duration.ofSeconds(10));
                try {
                    answers.put(runtime, ask.answers(shim, id));
                } finally {
                    shim.dispose();
                }
            } finally {
                // Already stopped when the questions ended it.
                containerd.ctr("task", "kill", "-s", "KILL", id);
                containerd.awaitStatus(id, "STOPPED");
                assertThat(containerd.ctr("task", "delete", id).status()).isZero();
                assertThat(containerd.ctr("container", "delete", id).status()).isZero();
            }
        }
        return answers;
    }

    private static reactor.core.publisher.Mono<Empty> kill(TtrpcConnection shim, String id, String execId,
            int signal, boolean all) {
        return shim.call(TaskService.SERVICE, "Kill", KillRequest.newBuilder().setId(id).setExecId(execId)
                .setSignal(signal).setAll(all).build(), Empty.parser(), call());
    }

    /** "OK", or the status code the call failed with. */
    private static String answer(reactor.core.publisher.Mono<?> call) {
        try {
            call.block(Duration.ofSeconds(20));
            return "OK";
        } catch (TtrpcStatusException refused) {
            return refused.code().name();
        }
    }

    /** An exec's process spec as containerd sends it. */
    private static Any processSpec(String... args) {
        String quoted = String.join(",", java.util.Arrays.stream(args).map(arg -> "\"" + arg + "\"").toList());
        return Any.newBuilder().setTypeUrl("types.containerd.io/opencontainers/runtime-spec/1/Process")
                .setValue(com.google.protobuf.ByteString.copyFromUtf8("{\"args\":[" + quoted + "],\"cwd\":\"/\","
                        + "\"env\":[\"PATH=/bin\"],\"user\":{\"uid\":0,\"gid\":0}}")).build();
    }

    /** {@code ctr task metrics --format json ID}, read. */
    private static JsonNode metrics(String id) throws Exception {
        Result metrics = containerd.ctr("task", "metrics", "--format", "json", id);
        assertThat(metrics.status()).as("%s", metrics).isZero();
        return JsonMapper.builder().build().readTree(metrics.stdout());
    }

    @Test
    void fiftyContainersRunOnOneDaemon() throws Exception {
        int count = 50;
        ExecutorService pool = Executors.newFixedThreadPool(10);
        try {
            List<Future<Result>> runs = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                String id = "many" + i;
                runs.add(pool.submit(() -> containerd.runContainer(List.of("-d"), id, "/bin/sleep", "1000")));
            }
            for (Future<Result> run : runs) {
                assertThat(run.get(120, TimeUnit.SECONDS).status()).as("%s", run.get()).isZero();
            }
            List<String> running = containerd.ctr("task", "ls").stdout().lines()
                    .filter(line -> line.trim().endsWith("RUNNING")).toList();
            assertThat(running).hasSize(count);
            assertThat(containerd.daemons()).as("one daemon serves them all").hasSize(1);
            assertThat(containerd.daemonChildren()).hasSize(count);
            List<Future<?>> removals = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                String id = "many" + i;
                removals.add(pool.submit(() -> {
                    containerd.ctr("task", "kill", "-s", "KILL", id);
                    containerd.awaitStatus(id, "STOPPED");
                    assertThat(containerd.ctr("task", "delete", id).status()).isZero();
                    assertThat(containerd.ctr("container", "delete", id).status()).isZero();
                    return null;
                }));
            }
            for (Future<?> removal : removals) {
                removal.get(120, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aContainerdRestartFindsItsRunningTasksAgain() throws Exception {
        assertThat(containerd.runContainer(List.of("-d"), "r1", "/bin/sleep", "1000").status()).isZero();
        List<Long> daemons = containerd.daemons();

        containerd.stop();
        containerd.start();

        assertThat(containerd.taskStatus("r1")).contains("RUNNING");
        assertThat(containerd.daemons()).isEqualTo(daemons);
        Result exec = containerd.ctr("task", "exec", "--exec-id", "after", "r1", "/bin/echo", "still here");
        assertThat(exec.stdout()).as("%s", exec).isEqualTo("still here\n");
        assertThat(containerd.ctr("task", "kill", "-s", "KILL", "r1").status()).isZero();
        containerd.awaitStatus("r1", "STOPPED");
        assertThat(containerd.ctr("task", "delete", "r1").status()).isZero();
        assertThat(containerd.ctr("container", "delete", "r1").status()).isZero();
    }

    @Test
    void aKilledDaemonsTasksAreCleanedUpByContainerd() throws Exception {
        for (String id : List.of("k1", "k2", "k3")) {
            assertThat(containerd.runContainer(List.of("-d"), id, "/bin/sleep", "1000").status()).isZero();
        }
        List<ProcessHandle> containers = containerd.daemonChildren();
        assertThat(containers).hasSize(3);
        List<Long> daemons = containerd.daemons();
        assertThat(daemons).hasSize(1);
        Path state = containerd.daemonState();
        Path socket = Path.of("/run/containerd/s", state.getFileName().toString());

        ProcessHandle.of(daemons.getFirst()).orElseThrow().destroyForcibly();

        awaitTasksCleanedUpByContainerd(containers);
        assertThat(containerd.runcState()).isEmpty();
        // The dead daemon's socket and pid file went with its tasks' cleanup: they used to stay in
        // /run/containerd/s and the state directory until some later start replaced them.
        assertThat(socket).as("the killed daemon's socket").doesNotExist();
        assertThat(state.resolve("pid")).as("the killed daemon's pid file").doesNotExist();
        for (String id : List.of("k1", "k2", "k3")) {
            assertThat(containerd.ctr("container", "delete", id).status()).isZero();
        }
        // A new daemon serves the next task.
        Result after = containerd.runContainer(List.of("--rm"), "k4", "/bin/echo", "again");
        assertThat(after.stdout()).as("%s", after).isEqualTo("again\n");
        assertThat(containerd.daemons()).hasSize(1).doesNotContainAnyElementsOf(daemons);
    }

    @Test
    void aDaemonStoppedWithSigtermLeavesNeitherItsSocketNorItsPidFile() throws Exception {
        assertThat(containerd.runContainer(List.of("-d"), "t1", "/bin/sleep", "1000").status()).isZero();
        List<ProcessHandle> containers = containerd.daemonChildren();
        List<Long> daemons = containerd.daemons();
        assertThat(daemons).hasSize(1);
        Path state = containerd.daemonState();
        Path socket = Path.of("/run/containerd/s", state.getFileName().toString());
        assertThat(socket).exists();

        // As a service manager stops it. The socket used to stay: a file in /run/containerd/s nobody listens on.
        ProcessHandle daemon = ProcessHandle.of(daemons.getFirst()).orElseThrow();
        daemon.destroy();
        daemon.onExit().get(20, TimeUnit.SECONDS);
        assertThat(socket).as("its socket").doesNotExist();
        assertThat(state.resolve("pid")).as("its pid file").doesNotExist();

        // containerd then cleans up its task, as after a SIGKILL.
        awaitTasksCleanedUpByContainerd(containers);
        assertThat(containerd.ctr("container", "delete", "t1").status()).isZero();
    }

    /**
     * Waits (20 s at most) until containerd, having seen a daemon's connections close, has run {@code delete} for each
     * of its tasks: none listed, none of {@code containers} alive. containerd says nothing when it is done.
     */
    private static void awaitTasksCleanedUpByContainerd(List<ProcessHandle> containers) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while ((!containerd.ctr("task", "ls").stdout().lines().skip(1).toList().isEmpty()
                || containers.stream().anyMatch(ProcessHandle::isAlive)) && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        assertThat(containerd.ctr("task", "ls").stdout().lines().skip(1).toList()).isEmpty();
        assertThat(containers).noneMatch(ProcessHandle::isAlive);
    }

    @Test
    void ctrEventsShowsTheTaskEventsInContainerdsOrder() throws Exception {
        try (PrivateContainerd.Events events = containerd.new Events()) {
            assertThat(containerd.runContainer(List.of("--rm"), "ev1", "/bin/sh", "-c", "exit 5").status())
                    .isEqualTo(5);
            List<String> lines = events.taskEventsOf("ev1");
            assertThat(lines).hasSize(4);
            assertThat(lines.get(0)).contains("/tasks/create", "\"container_id\":\"ev1\"");
            // The stdio the create named, as runc's shim tells it (the event used to have no io at all).
            assertThat(lines.get(0)).containsPattern("\"io\":\\{\"stdin\":\"[^\"]*ev1-stdin\",\"stdout\":\"[^\"]*"
                    + "ev1-stdout\",\"stderr\":\"[^\"]*ev1-stderr\"\\}");
            assertThat(lines.get(1)).contains("/tasks/start");
            assertThat(lines.get(2)).contains("/tasks/exit", "\"exit_status\":5");
            assertThat(lines.get(3)).contains("/tasks/delete", "\"exit_status\":5");
        }
    }

    @Test
    void aTerminalCarriesTheProcesssOutputAndItsSizeChanges() throws Exception {
        // ctr -t needs a terminal of its own: script(1) gives it one, 33x101 by stty; ctr passes that size on
        // right after the start (so the process reads it a moment later).
        String ctr = String.join(" ", containerd.ctrCommand(containerd.runArgs(List.of("--rm", "-t"), "tty1",
                "/bin/sh", "-c", "'tty; sleep 1; stty size; echo on-the-terminal; exit 3'")));
        Result run = PrivateContainerd.run(List.of("script", "-qec", "stty rows 33 cols 101; " + ctr,
                "/dev/null"), null, Map.of());
        assertThat(run.status()).as("%s", run).isEqualTo(3);
        assertThat(run.stdout()).contains("/dev/pts/").contains("33 101").contains("on-the-terminal")
                .doesNotContain("resize pty error");

        assertThat(containerd.runContainer(List.of("-d"), "tty2", "/bin/sleep", "1000").status()).isZero();
        String exec = String.join(" ", containerd.ctrCommand("task", "exec", "-t", "--exec-id", "t", "tty2",
                "/bin/sh", "-c", "'tty; echo exec-terminal'"));
        Result inExec = PrivateContainerd.run(List.of("script", "-qec", "stty rows 40 cols 120; " + exec,
                "/dev/null"), null, Map.of());
        assertThat(inExec.status()).as("%s", inExec).isZero();
        assertThat(inExec.stdout()).contains("/dev/pts/").contains("exec-terminal");
        assertThat(containerd.ctr("task", "kill", "-s", "KILL", "tty2").status()).isZero();
        containerd.awaitStatus("tty2", "STOPPED");
        assertThat(containerd.ctr("task", "delete", "tty2").status()).isZero();
        assertThat(containerd.ctr("container", "delete", "tty2").status()).isZero();
    }

    @Test
    void theRuncOptionsOfACreateChooseRuncsRootAndBinary() throws Exception {
        // ctr passes runc options only to containerd's runc runtime; CRI passes them from its config to any. So
        // the create goes straight to the daemon's socket here, as containerd sends it.
        assertThat(containerd.runContainer(List.of("-d"), "o0", "/bin/sleep", "1000").status()).isZero();
        Path socket = Path.of("/run/containerd/s", containerd.daemonState().getFileName().toString());
        Path bundle = sleepBundle("options-bundle");
        Path root = containerd.work.resolve("custom-runc-root");
        Path log = containerd.work.resolve("runc-wrapper.log");
        Path wrapper = containerd.work.resolve("runc-wrapper");
        Files.writeString(wrapper, "#!/bin/sh\necho \"$*\" >> " + log + "\nexec runc \"$@\"\n");
        Files.setPosixFilePermissions(wrapper, PosixFilePermissions.fromString("rwx------"));
        String id = "opt-" + java.util.UUID.randomUUID().toString().substring(0, 8);
        Options options = Options.newBuilder().setRoot(root.toString()).setBinaryName(wrapper.toString()).build();
        try (RuntimeResources resources = new RuntimeResources("options-test-")) {
            TtrpcConnection daemon = TtrpcClient.create().socket(socket).runOn(resources.loops()).connect()
                    .block(Duration.ofSeconds(10));
            CallOptions call = CallOptions.defaults().withTimeout(Duration.ofSeconds(20))
                    .withNamespace(containerd.namespace);
            try {
                CreateTaskResponse created = daemon.call(TaskService.SERVICE, "Create", CreateTaskRequest.newBuilder()
                        .setId(id).setBundle(bundle.toString()).setOptions(Any.newBuilder()
                                .setTypeUrl("containerd.runc.v1.Options").setValue(options.toByteString()))
                        .build(), CreateTaskResponse.parser(), call).block();
                assertThat(created.getPid()).isPositive();
                assertThat(bundle.resolve("shimmer-task")).exists();
                assertThat(root.resolve(containerd.namespace).resolve(id).resolve("state.json")).exists();
                assertThat(Path.of("/run/containerd/runc", containerd.namespace, id)).doesNotExist();
                assertThat(Files.readString(log)).contains("--root " + root.resolve(containerd.namespace))
                        .contains("create");
                daemon.call(TaskService.SERVICE, "Kill", KillRequest.newBuilder().setId(id).setSignal(9).build(),
                        Empty.parser(), call).block();
                DeleteResponse deleted = daemon.call(TaskService.SERVICE, "Delete", DeleteRequest.newBuilder()
                        .setId(id).build(), DeleteResponse.parser(), call).block();
                assertThat(deleted.getExitStatus()).isEqualTo(137);
                assertThat(root.resolve(containerd.namespace).resolve(id)).doesNotExist();
                assertThat(bundle.resolve("shimmer-task")).as("the marker goes with the task").doesNotExist();
                TtrpcStatusException unknown = org.assertj.core.api.Assertions.catchThrowableOfType(
                        TtrpcStatusException.class, () -> daemon.call(TaskService.SERVICE, "State",
                                StateRequest.newBuilder().setId(id).build(), StateResponse.parser(), call).block());
                assertThat(unknown.code()).isEqualTo(StatusCode.NOT_FOUND);
                TtrpcStatusException bad = org.assertj.core.api.Assertions.catchThrowableOfType(
                        TtrpcStatusException.class, () -> daemon.call(TaskService.SERVICE, "Create",
                                CreateTaskRequest.newBuilder().setId("../x").setBundle(bundle.toString()).build(),
                                CreateTaskResponse.parser(), call).block());
                assertThat(bad.code()).isEqualTo(StatusCode.INVALID_ARGUMENT);
                assertThat(bad.statusMessage()).contains("../x");
            } finally {
                daemon.dispose();
            }
        }
        assertThat(containerd.ctr("task", "kill", "-s", "KILL", "o0").status()).isZero();
        containerd.awaitStatus("o0", "STOPPED");
        assertThat(containerd.ctr("task", "delete", "o0").status()).isZero();
        assertThat(containerd.ctr("container", "delete", "o0").status()).isZero();
    }

    @Test
    void callsDuringACreateWaitForItAndStdinClosedBeforeAnExecStartsEndsItsInput() throws Exception {
        assertThat(containerd.runContainer(List.of("-d"), "w0", "/bin/sleep", "1000").status()).isZero();
        try {
            createsAndExecsWhileAnotherTaskRuns();
        } finally {
            // Whatever failed above, w0 goes: left running, it failed every later test's check for tasks left.
            assertThat(containerd.ctr("task", "kill", "-s", "KILL", "w0").status()).isZero();
            containerd.awaitStatus("w0", "STOPPED");
            assertThat(containerd.ctr("task", "delete", "w0").status()).isZero();
            assertThat(containerd.ctr("container", "delete", "w0").status()).isZero();
        }
    }

    private void createsAndExecsWhileAnotherTaskRuns() throws Exception {
        Path socket = Path.of("/run/containerd/s", containerd.daemonState().getFileName().toString());
        Path bundle = sleepBundle("slow-bundle");
        Path slowRunc = containerd.work.resolve("slow-runc");
        // runc create takes 2 s longer: a State, Kill or Delete of the task meanwhile waits for the create.
        Path creating = containerd.work.resolve("runc-create-began");
        Files.writeString(slowRunc, "#!/bin/sh\ncase \" $* \" in *\" create \"*) touch " + creating
                + "; sleep 2;; esac\nexec runc \"$@\"\n");
        Files.setPosixFilePermissions(slowRunc, PosixFilePermissions.fromString("rwx------"));
        String id = "slow-" + java.util.UUID.randomUUID().toString().substring(0, 8);
        Path stdin = containerd.work.resolve("exec-stdin");
        Path stdout = containerd.work.resolve("exec-stdout");
        assertThat(PrivateContainerd.run(List.of("mkfifo", stdin.toString(), stdout.toString()), null, Map.of())
                .status()).isZero();
        try (RuntimeResources resources = new RuntimeResources("wait-test-")) {
            TtrpcConnection daemon = TtrpcClient.create().socket(socket).runOn(resources.loops()).connect()
                    .block(Duration.ofSeconds(10));
            CallOptions call = CallOptions.defaults().withTimeout(Duration.ofSeconds(20))
                    .withNamespace(containerd.namespace);
            try {
                CompletableFuture<CreateTaskResponse> created = daemon.call(TaskService.SERVICE, "Create",
                        CreateTaskRequest.newBuilder().setId(id).setBundle(bundle.toString()).setOptions(
                                Any.newBuilder().setTypeUrl("containerd.runc.v1.Options").setValue(Options
                                        .newBuilder().setBinaryName(slowRunc.toString()).build().toByteString()))
                                .build(), CreateTaskResponse.parser(), call).toFuture();
                long began = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (!Files.exists(creating)) {
                    assertThat(System.nanoTime()).as("runc create began").isLessThan(began);
                    Thread.onSpinWait();
                }
                long asked = System.nanoTime();
                StateResponse state = daemon.call(TaskService.SERVICE, "State", StateRequest.newBuilder().setId(id)
                        .build(), StateResponse.parser(), call).block();
                // Answered, not NOT_FOUND, once the create made the task (its answer may come just after).
                assertThat(state.getStatus()).isEqualTo(Status.CREATED);
                assertThat(state.getPid()).isEqualTo(created.get(10, TimeUnit.SECONDS).getPid());
                assertThat(System.nanoTime() - asked).as("the State waited").isGreaterThan(
                        TimeUnit.MILLISECONDS.toNanos(1000));

                // An exec whose stdin is closed before its start: the start still answers, and the process reads
                // the end of its input once the client's writer is gone too.
                byte[] spec = ("{\"args\":[\"/bin/sh\",\"-c\",\"cat; echo end\"],\"cwd\":\"/\","
                        + "\"env\":[\"PATH=/bin\"],\"user\":{\"uid\":0,\"gid\":0}}").getBytes(StandardCharsets.UTF_8);
                daemon.call(TaskService.SERVICE, "Start", StartRequest.newBuilder().setId(id).build(),
                        StartResponse.parser(), call).block();
                try (var reader = new java.io.RandomAccessFile(stdout.toFile(), "rw")) {
                    daemon.call(TaskService.SERVICE, "Exec", ExecProcessRequest.newBuilder().setId(id).setExecId("x")
                            .setStdin(stdin.toString()).setStdout(stdout.toString()).setSpec(Any.newBuilder()
                                    .setTypeUrl("types.containerd.io/opencontainers/runtime-spec/1/Process")
                                    .setValue(com.google.protobuf.ByteString.copyFrom(spec))).build(),
                            Empty.parser(), call).block();
                    TtrpcStatusException notStarted = org.assertj.core.api.Assertions.catchThrowableOfType(
                            TtrpcStatusException.class, () -> daemon.call(TaskService.SERVICE, "Kill",
                                    KillRequest.newBuilder().setId(id).setExecId("x").setSignal(9).build(),
                                    Empty.parser(), call).block());
                    assertThat(notStarted.code()).as("kill before the start").isEqualTo(
                            StatusCode.FAILED_PRECONDITION);
                    daemon.call(TaskService.SERVICE, "CloseIO", CloseIORequest.newBuilder().setId(id)
                            .setExecId("x").setStdin(true).build(), Empty.parser(), call).block();
                    StartResponse started = daemon.call(TaskService.SERVICE, "Start", StartRequest.newBuilder()
                            .setId(id).setExecId("x").build(), StartResponse.parser(), call)
                            .block(Duration.ofSeconds(10));
                    assertThat(started.getPid()).isPositive();
                    WaitResponse exited = daemon.call(TaskService.SERVICE, "Wait", WaitRequest.newBuilder().setId(id)
                            .setExecId("x").build(), WaitResponse.parser(), call).block(Duration.ofSeconds(10));
                    assertThat(exited.getExitStatus()).isZero();
                    byte[] printed = new byte[16];
                    int n = reader.read(printed);
                    assertThat(new String(printed, 0, n, StandardCharsets.UTF_8)).isEqualTo("end\n");
                }
                daemon.call(TaskService.SERVICE, "Delete", DeleteRequest.newBuilder().setId(id).setExecId("x")
                        .build(), DeleteResponse.parser(), call).block();
                daemon.call(TaskService.SERVICE, "Kill", KillRequest.newBuilder().setId(id).setSignal(9).build(),
                        Empty.parser(), call).block();
                // Kill answers once the signal is sent, as runc's shim does; a Delete before the exit is refused
                // ("cannot delete a running process": a CI run under load got there first). ctr waits too.
                WaitResponse killed = daemon.call(TaskService.SERVICE, "Wait", WaitRequest.newBuilder().setId(id)
                        .build(), WaitResponse.parser(), call).block(Duration.ofSeconds(10));
                assertThat(killed.getExitStatus()).isEqualTo(137);
                daemon.call(TaskService.SERVICE, "Delete", DeleteRequest.newBuilder().setId(id).build(),
                        DeleteResponse.parser(), call).block();
                assertThat(bundle.resolve("shimmer-task")).doesNotExist();
            } finally {
                daemon.dispose();
            }
        }
    }

    @Test
    void aTerminalsOutputNobodyReadsIsDroppedWithItsProcess() throws Exception {
        // What a ctr run -t that was killed leaves: a terminal whose stdout FIFO fills up with nobody reading. The
        // daemon's copy into it blocked a thread for good, and held the FIFO after the task's delete.
        Result keeper = containerd.runContainer(List.of("-d"), "f0", "/bin/sleep", "1000");
        assertThat(keeper.status()).as("%s", keeper).isZero();
        Path socket = Path.of("/run/containerd/s", containerd.daemonState().getFileName().toString());
        Path bundle = bundle("unread-terminal", true, "/bin/sh", "-c", "while :; do echo unread-output; done");
        Path stdout = containerd.work.resolve("unread-stdout");
        assertThat(PrivateContainerd.run(List.of("mkfifo", stdout.toString()), null, Map.of()).status()).isZero();
        String id = "unread-" + java.util.UUID.randomUUID().toString().substring(0, 8);
        long daemonPid = containerd.daemons().getFirst();
        try (RuntimeResources resources = new RuntimeResources("unread-test-")) {
            TtrpcConnection daemon = TtrpcClient.create().socket(socket).runOn(resources.loops()).connect()
                    .block(Duration.ofSeconds(10));
            CallOptions call = CallOptions.defaults().withTimeout(Duration.ofSeconds(20))
                    .withNamespace(containerd.namespace);
            try {
                daemon.call(TaskService.SERVICE, "Create", CreateTaskRequest.newBuilder().setId(id)
                        .setBundle(bundle.toString()).setTerminal(true).setStdout(stdout.toString()).build(),
                        CreateTaskResponse.parser(), call).block();
                daemon.call(TaskService.SERVICE, "Start", StartRequest.newBuilder().setId(id).build(),
                        StartResponse.parser(), call).block();
                awaitFull(stdout);
            } finally {
                // Whatever failed above, the task goes: left, it outlived the daemon and spun on its dead terminal.
                daemon.call(TaskService.SERVICE, "Kill", KillRequest.newBuilder().setId(id).setSignal(9).build(),
                        Empty.parser(), call).block();
                WaitResponse killed = daemon.call(TaskService.SERVICE, "Wait", WaitRequest.newBuilder().setId(id)
                        .build(), WaitResponse.parser(), call).block(Duration.ofSeconds(20));
                assertThat(killed.getExitStatus()).isEqualTo(137);
                daemon.call(TaskService.SERVICE, "Delete", DeleteRequest.newBuilder().setId(id).build(),
                        DeleteResponse.parser(), call).block();
                daemon.dispose();
            }
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!descriptorsOf(daemonPid, stdout).isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertThat(descriptorsOf(daemonPid, stdout)).as("the daemon's descriptors of the unread FIFO").isEmpty();
        assertThat(containerd.ctr("task", "kill", "-s", "KILL", "f0").status()).isZero();
        containerd.awaitStatus("f0", "STOPPED");
        assertThat(containerd.ctr("task", "delete", "f0").status()).isZero();
        assertThat(containerd.ctr("container", "delete", "f0").status()).isZero();
    }

    /**
     * Waits until FIFO {@code fifo} has no buffer left: a write of a page, which the kernel makes whole or not at
     * all, is refused. (A byte may still fit into the last page a smaller write left.) The open is retried while
     * the FIFO has no reader yet (the daemon's copy into it may not have begun).
     */
    private static void awaitFull(Path fifo) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            try (OwnedFd writer = OwnedFd.open(fifo, LinuxCalls.O_WRONLY | LinuxCalls.O_NONBLOCK
                    | LinuxCalls.O_CLOEXEC); java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
                java.lang.foreign.MemorySegment page = arena.allocate(4096);
                java.lang.foreign.MemorySegment state = LinuxCalls.allocateCallState(arena);
                while (writer.write(page, state) > 0) {
                    assertThat(System.nanoTime()).as("the FIFO filled up").isLessThan(deadline);
                    Thread.sleep(50);
                }
                return;
            } catch (IOException noReaderYet) {
                assertThat(System.nanoTime()).as("the FIFO got a reader: %s", noReaderYet).isLessThan(deadline);
                Thread.sleep(50);
            }
        }
    }

    /** The descriptors process {@code pid} has open on {@code file}. */
    private static List<String> descriptorsOf(long pid, Path file) throws IOException {
        List<String> found = new ArrayList<>();
        try (var fds = Files.list(Path.of("/proc", Long.toString(pid), "fd"))) {
            for (Path fd : fds.toList()) {
                try {
                    if (Files.readSymbolicLink(fd).toString().startsWith(file.toString())) {
                        found.add(fd.getFileName().toString());
                    }
                } catch (java.nio.file.NoSuchFileException closed) {
                    // Closed while listed.
                }
            }
        }
        return found;
    }

    @Test
    void theBinarysDeleteOfATaskTheLiveDaemonHasEndsItThroughTheDaemon() throws Exception {
        // What containerd runs when a task's connection closed while the daemon lives: the task is killed and
        // deleted through the daemon, which answers with its status; the marker goes.
        assertThat(containerd.runContainer(List.of("-d"), "b1", "/bin/sleep", "1000").status()).isZero();
        Path bundle = containerd.work.resolve("state/io.containerd.runtime.v2.task/" + containerd.namespace + "/b1");
        assertThat(bundle.resolve("shimmer-task")).exists();
        Path binary = containerd.work.resolve("prefix/bin/containerd-shim-shimmer-v1");
        ProcessBuilder delete = new ProcessBuilder(binary.toString(), "-namespace", containerd.namespace,
                "-address", containerd.work.resolve("containerd.sock").toString(), "-publish-binary",
                "/usr/bin/containerd", "-id", "b1", "-bundle", bundle.toString(), "delete").directory(bundle.toFile());
        Process process = delete.start();
        CompletableFuture<String> err = PrivateContainerd.read(process.getErrorStream());
        byte[] out = process.getInputStream().readAllBytes();
        assertThat(process.waitFor(5, TimeUnit.SECONDS)).as("within containerd's 5 s").isTrue();
        assertThat(process.exitValue()).as("%s", err.join()).isZero();
        DeleteResponse response = DeleteResponse.parseFrom(out);
        assertThat(response.getExitStatus()).isEqualTo(137);
        assertThat(response.getPid()).isPositive();
        assertThat(bundle.resolve("shimmer-task")).doesNotExist();
        assertThat(containerd.runcState()).isEmpty();
        // containerd still lists the task; its delete now finds the daemon without it, and ends it.
        containerd.ctr("task", "delete", "b1");
        assertThat(containerd.ctr("container", "delete", "b1").status()).isZero();
    }

    @Test
    void twoDeletesOfTheBinaryForOneTaskAtOnceBothSucceed() throws Exception {
        // Two deletes of one task at once (containerd's after a connection closed, and another): both found the
        // marker, the first deleted the task through the daemon, and the second, told the daemon no longer has it,
        // read the marker the first had just removed ("sed: can't read ...": exit 2, no answer).
        assertThat(containerd.runContainer(List.of("-d"), "b2", "/bin/sleep", "1000").status()).isZero();
        Path bundle = containerd.work.resolve("state/io.containerd.runtime.v2.task/" + containerd.namespace + "/b2");
        Path binary = containerd.work.resolve("prefix/bin/containerd-shim-shimmer-v1");
        List<Process> deletes = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            deletes.add(new ProcessBuilder(binary.toString(), "-namespace", containerd.namespace, "-address",
                    containerd.work.resolve("containerd.sock").toString(), "-publish-binary", "/usr/bin/containerd",
                    "-id", "b2", "-bundle", bundle.toString(), "delete").directory(bundle.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start());
        }
        for (Process delete : deletes) {
            CompletableFuture<String> err = PrivateContainerd.read(delete.getErrorStream());
            byte[] out = delete.getInputStream().readAllBytes();
            assertThat(delete.waitFor(10, TimeUnit.SECONDS)).isTrue();
            assertThat(delete.exitValue()).as("%s", err.join()).isZero();
            DeleteResponse.parseFrom(out);
        }
        assertThat(bundle.resolve("shimmer-task")).doesNotExist();
        assertThat(containerd.runcState()).isEmpty();
        containerd.ctr("task", "delete", "b2");
        assertThat(containerd.ctr("container", "delete", "b2").status()).isZero();
    }

    @Test
    void aLogUriFileIsMadeWithItsDirectory() throws Exception {
        Path log = containerd.work.resolve("logs/deeper/l1.log");
        Result run = containerd.runContainer(List.of("--rm", "--log-uri", "file://" + log), "l1", "/bin/sh", "-c",
                "echo to-the-log; echo err-to-the-log >&2");
        assertThat(run.status()).as("%s", run).isZero();
        assertThat(Files.readString(log)).contains("to-the-log\n").contains("err-to-the-log\n");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(log))).isEqualTo("rw-r--r--");
    }

    /** A bundle as containerd makes one, for a create sent straight to the daemon: runc's spec, `sleep 1000`. */
    private static Path sleepBundle(String name) throws Exception {
        return bundle(name, false, "/bin/sleep", "1000");
    }

    /** A bundle of {@code runc spec} on the busybox root, running {@code args}, with a terminal or without. */
    private static Path bundle(String name, boolean terminal, String... args) throws Exception {
        Path bundle = Files.createDirectories(containerd.work.resolve(name));
        assertThat(PrivateContainerd.run(List.of("runc", "spec", "--bundle", bundle.toString()), null, Map.of())
                .status()).isZero();
        Path config = bundle.resolve("config.json");
        String quoted = String.join(", ", java.util.Arrays.stream(args).map(arg -> "\"" + arg + "\"").toList());
        Files.writeString(config, Files.readString(config)
                .replace("\"terminal\": true", "\"terminal\": " + terminal)
                .replace("\"sh\"", quoted)
                .replace("\"path\": \"rootfs\"", "\"path\": \"" + containerd.rootfs + "\""));
        return bundle;
    }

    @Test
    void anOomKillIsATasksOomEventBeforeTheExit() throws Exception {
        try (PrivateContainerd.Events events = containerd.new Events()) {
            // tail keeps a line without a newline whole: 300 MiB of zeros in a 32 MiB cgroup.
            Result run = containerd.runContainer(List.of("--rm", "--memory-limit", "33554432"), "oom1", "/bin/sh",
                    "-c", "head -c 300m /dev/zero | tail; echo status $?");
            // The killer takes tail, by far the largest. Under load, a second OOM before tail's memory was back
            // took the shell as well once (CI: exit 137, nothing printed): two kills, and up to two events.
            boolean shellLived = run.stdout().contains("status 137");
            assertThat(shellLived || run.status() == 137).as("%s", run).isTrue();
            List<String> topics = events.taskEventsOf("oom1").stream()
                    .map(line -> line.replaceFirst(".*(/tasks/[a-z-]+).*", "$1")).toList();
            assertThat(topics).containsSubsequence("/tasks/start", "/tasks/oom", "/tasks/exit", "/tasks/delete");
            assertThat(topics.lastIndexOf("/tasks/oom")).as("every OOM before the exit: %s", topics)
                    .isLessThan(topics.indexOf("/tasks/exit"));
            assertThat(topics).filteredOn("/tasks/oom"::equals).hasSizeBetween(1, shellLived ? 1 : 2);
        }
    }

    @Test
    void theBinaryRefusesABadIdOrNamespaceByName() throws Exception {
        Path binary = containerd.work.resolve("prefix/bin/containerd-shim-shimmer-v1");
        Result badId = PrivateContainerd.run(List.of(binary.toString(), "-namespace", "default", "-address",
                "/x.sock", "-id", "../escape", "start"), null, Map.of());
        assertThat(badId.status()).isNotZero();
        assertThat(badId.stderr()).contains("invalid container id '../escape'");
        assertThat(badId.stdout()).isEmpty();
        Result badNamespace = PrivateContainerd.run(List.of(binary.toString(), "-namespace", "a/b", "-address",
                "/x.sock", "-id", "c1", "delete"), null, Map.of());
        assertThat(badNamespace.stderr()).contains("invalid namespace 'a/b'");
        Result unknown = PrivateContainerd.run(List.of(binary.toString(), "-namespace", "default", "-address",
                "/x.sock", "-id", "c1", "-bogus", "1", "start"), null, Map.of());
        assertThat(unknown.stderr()).contains("unknown flag -bogus");
    }

    @Test
    void aDaemonSlowToServeDoesNotExitIdleBeforeTheCreateOfTheTaskItWasStartedFor() throws Exception {
        // A JVM that takes longer to serve than the idle time (here: interpreted only, against 2 s of idle time). The
        // start touched its last-start before it launched the daemon, so that mark had aged by the launch, and the
        // new daemon exited idle before containerd's Create came: "failed to create shim task: ttrpc: closed".
        PrivateContainerd slow = new PrivateContainerd(Map.of("SHIMMER_SHIM_JAVA_OPTS", "-Xint",
                "SHIMMER_SHIM_IDLE_EXIT", "2"));
        try {
            Result run = slow.runContainer(List.of("--rm"), "slow1", "/bin/echo", "served");
            assertThat(run.status()).as("%s", run).isZero();
            assertThat(run.stdout()).isEqualTo("served\n");
        } finally {
            slow.close();
        }
    }

    @Test
    void aDaemonThatCannotStartFailsItsStartAtOnce() throws Exception {
        // A JVM that exits at once (here a bad option; a broken install alike) made each start wait its whole 30 s
        // under the lock: ten containers asked at once, five minutes before the last one was told.
        String namespace = "shimmer-bad-" + java.util.UUID.randomUUID().toString().substring(0, 8);
        Path bundle = Files.createDirectories(containerd.work.resolve("unstartable-daemon-bundle"));
        Path state = containerd.daemonState(namespace);
        ProcessBuilder start = new ProcessBuilder(containerd.work.resolve("prefix/bin/containerd-shim-shimmer-v1")
                .toString(), "-namespace", namespace, "-address", containerd.work.resolve("containerd.sock")
                .toString(), "-publish-binary", "/usr/bin/containerd", "-id", "never", "start")
                .directory(bundle.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        start.environment().put("SHIMMER_SHIM_JAVA_OPTS", "-XX:+NoSuchShimmerOption");
        start.environment().put("TTRPC_ADDRESS", containerd.work.resolve("containerd.sock.ttrpc").toString());
        Process process = start.start();
        try {
            CompletableFuture<String> out = PrivateContainerd.read(process.getInputStream());
            CompletableFuture<String> err = PrivateContainerd.read(process.getErrorStream());
            assertThat(process.waitFor(10, TimeUnit.SECONDS)).as("start answered well before its 30 s").isTrue();
            assertThat(process.exitValue()).isNotZero();
            assertThat(out.join()).as("no address").isEmpty();
            assertThat(err.join()).contains("exited before it served").contains("NoSuchShimmerOption");
            assertThat(bundle.resolve("address")).doesNotExist();
        } finally {
            process.destroyForcibly().waitFor();
            PrivateContainerd.run(List.of("rm", "-rf", state.toString()), null, Map.of());
        }
    }

    @Test
    void theDaemonsSocketIsOwnerOnly() throws Exception {
        assertThat(containerd.runContainer(List.of("-d"), "s1", "/bin/sleep", "1000").status()).isZero();
        String address = Files.readString(containerd.work.resolve(
                "state/io.containerd.runtime.v2.task/" + containerd.namespace + "/s1/address"));
        assertThat(address).startsWith("unix:///run/containerd/s/");
        Path socket = Path.of(address.substring("unix://".length()));
        assertThat(socket.getFileName().toString()).isEqualTo(containerd.daemonState().getFileName().toString());
        long daemon = containerd.daemons().getFirst();
        assertThat(Files.readString(containerd.daemonState().resolve("pid")).trim()).isEqualTo(Long.toString(daemon));
        // In a session of its own, and not containerd's child: it outlives containerd.
        String[] stat = Files.readString(Path.of("/proc", Long.toString(daemon), "stat")).replaceFirst(".*\\) ", "")
                .split(" ");
        assertThat(Long.parseLong(stat[3])).as("session").isEqualTo(daemon);
        assertThat(Long.parseLong(stat[1])).as("parent").isNotEqualTo(containerd.pid());
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(socket))).isEqualTo("rw-------");
        assertThat(Files.getPosixFilePermissions(socket.getParent()))
                .allMatch(permission -> permission.name().startsWith("OWNER"));
        assertThat(containerd.ctr("task", "kill", "-s", "KILL", "s1").status()).isZero();
        containerd.awaitStatus("s1", "STOPPED");
        assertThat(containerd.ctr("task", "delete", "s1").status()).isZero();
        assertThat(containerd.ctr("container", "delete", "s1").status()).isZero();
    }
}
