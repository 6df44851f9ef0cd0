package org.shimmer.runtime.linux.shim.local;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.EventFilter;
import org.shimmer.runtime.events.InMemoryEventExchange;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.shim.ShimContractTest;
import org.shimmer.runtime.linux.spec.CgroupPaths;
import org.shimmer.runtime.linux.spec.CgroupsLeft;
import org.shimmer.runtime.linux.stats.RuncStats;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.LogCapture;
import org.shimmer.runtime.linux.testing.Zombies;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import reactor.core.Disposable;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import reactor.core.scheduler.Schedulers;
import reactor.test.StepVerifier;

/** The contract, and what only the local shim does: exits learnt inside the JVM, zombies, host children. */
class LocalShimTest extends ShimContractTest {

    @Override
    protected Mono<ShimClient> newShim(Bundle bundle) {
        return bundle.newShimClient(ShimOpt.local(), runc);
    }

    @Override
    protected String expectedStatsType() {
        return RuncStats.TYPE;
    }

    @Override
    protected ShimOpt otherKind() {
        return ShimOpt.remote(Path.of("containerd-shim-runc-v2"), temp.resolve("daemon.sock").toString(), null, false,
                exit -> {});
    }

    @Test
    void itsEventsGoWhereTheRemoteShimsEventsGoOneStreamForTheHost() throws Exception {
        // Issue 10: local events went into the exchange given to ShimOpt.local(x), remote ones into
        // RuntimeConfig.events(); a host that set both differently saw two streams.
        InMemoryEventExchange host = new InMemoryEventExchange();
        try {
            RuntimePlugin view = runtime.withConfig(config().withEvents(host));
            Bundle bundle = view.load(NS, bundle("/bin/true").id()).block(TIMEOUT);
            EventRecorder throughTheRuntime = new EventRecorder(view.events()
                    .filter(envelope -> envelope.namespace().equals(NS)));
            EventRecorder inTheHosts = new EventRecorder(host.subscribe(EventFilter.all())
                    .filter(envelope -> envelope.namespace().equals(NS)));
            EventRecorder intoTheDefault = new EventRecorder(resources.exchange(temp.resolve("state")).subscribe(EventFilter.all())
                    .filter(envelope -> envelope.namespace().equals(NS)));
            // A marker through the host's exchange shows runtime.events() reads it before the container's events
            // are published.
            awaitTrue(() -> {
                host.publish(NS, "/test/ready", "ready").block(TIMEOUT);
                return throughTheRuntime.envelopes().stream().anyMatch(e -> e.topic().equals("/test/ready"));
            });
            ShimClient shim = bundle.newShimClient(ShimOpt.local(), runc).block(TIMEOUT);

            shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
            shim.start().block(TIMEOUT);
            assertThat(shim.awaitExit().block(TIMEOUT).status()).isZero();
            shim.delete().block(TIMEOUT);

            inTheHosts.awaitTopics("/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete");
            // What a host subscribed through the runtime sees: the same stream.
            throughTheRuntime.awaitTopics("/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete");
            assertThat(intoTheDefault.envelopes()).as("events in the exchange the host did not choose").isEmpty();
            throughTheRuntime.close();
            inTheHosts.close();
            intoTheDefault.close();
            shim.shutdown().block(TIMEOUT);
        } finally {
            host.dispose();
        }
    }

    /**
     * runtime.events() sees what is published once it is subscribed, before the events server it binds on first
     * use is up: subscribed only after the bind, a host that subscribed and then killed a local container missed
     * its exit (here the bind outlasted the kill, the exit and the delete).
     */
    @Test
    void runtimeEventsSeeEverythingPublishedOnceSubscribedEvenWhileTheEventsServerBinds() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "600");
        ShimClient shim = started(bundle);
        EventRecorder recorder = new EventRecorder(runtime.events()
                .filter(envelope -> envelope.namespace().equals(NS)));
        resources.exchange(temp.resolve("state")).publish(NS, "/test/marker", "right after subscribe").block(TIMEOUT);
        shim.kill(9, false).block(TIMEOUT);
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isEqualTo(137);
        shim.delete().block(TIMEOUT);

        recorder.awaitTopics("/test/marker", "/tasks/exit", "/tasks/delete");
        assertThat(recorder.envelopes()).extracting(Envelope::topic)
                .containsExactly("/test/marker", "/tasks/exit", "/tasks/delete");
        assertThat(((TaskEvent.TaskExit) recorder.envelopes().get(1).event()).exitStatus()).isEqualTo(137);
        recorder.close();
        awaitTrue(() -> resources.exchange(temp.resolve("state")).subscriptions().isEmpty());
        assertThat(resources.exchange(temp.resolve("state")).subscriptions()).isEmpty();
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void aFastExitingContainerTwoHundredTimesStartsBeforeItExits() throws Exception {
        Bundle bundle = bundle("/bin/true");
        ShimClient shim = shim(bundle);
        EventRecorder recorder = new EventRecorder(shim.events());

        for (int i = 0; i < 200; i++) {
            shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
            shim.start().block(TIMEOUT);
            assertThat(shim.awaitExit().block(TIMEOUT).status()).isZero();
            shim.delete().block(TIMEOUT);
        }

        recorder.awaitCount(800);
        recorder.close();
        List<String> topics = recorder.envelopes().stream().map(Envelope::topic).toList();
        for (int i = 0; i < 200; i++) {
            assertThat(topics.subList(4 * i, 4 * i + 4)).as("lifecycle %d", i)
                    .containsExactly("/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete");
        }
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void childrenAContainerLeavesBehindAreReaped() throws Exception {
        Bundle bundle = bundle("/bin/sh", "-c", "sleep 30 & sleep 30 & sleep 30 & echo forked; exit 0");
        ShimClient shim = started(bundle);

        assertThat(shim.awaitExit().block(TIMEOUT).status()).isZero();
        shim.delete().block(TIMEOUT);

        // The init's death kills its namespace; the sleeps become zombies parented to the JVM, the subreaper.
        awaitTrue(() -> Zombies.ofThisJvm().isEmpty());
        shim.shutdown().block(TIMEOUT);
    }

    /**
     * A container in the host's pid namespace: its orphans show no nested pid namespace, and stayed zombies of the
     * JVM for its life. They are reaped by their container's cgroup; host children, meanwhile, keep their codes.
     */
    @Test
    void childrenAContainerInTheHostsPidNamespaceLeavesAreReapedAndHostChildrenKeepTheirCodes() throws Exception {
        ObjectMapper json = new ObjectMapper();
        ObjectNode spec = (ObjectNode) json.readTree(BusyboxBundle.spec(Files.createDirectories(temp.resolve("specs")),
                "/bin/sh", "-c", "sleep 1 & sleep 1 & sleep 1 & exit 0"));
        ArrayNode namespaces = (ArrayNode) spec.path("linux").path("namespaces");
        for (int i = namespaces.size() - 1; i >= 0; i--) {
            if (namespaces.get(i).path("type").asText().equals("pid")) {
                namespaces.remove(i);
            }
        }
        Bundle bundle = bundle(json.writeValueAsBytes(spec));
        ShimClient shim = started(bundle);
        List<Process> hostChildren = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            hostChildren.add(new ProcessBuilder("sh", "-c", "sleep 1.5; exit 42").start());
        }

        assertThat(shim.awaitExit().block(TIMEOUT).status()).isZero();
        for (Process child : hostChildren) {
            assertThat(child.waitFor()).isEqualTo(42);
        }
        awaitTrue(() -> Zombies.ofThisJvm().isEmpty());
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void hostChildrenKeepTheirExitCodesWhileContainersRun() throws Exception {
        Bundle bundle = bundle("/bin/sh", "-c", "sleep 1; exit 3");
        ShimClient shim = started(bundle);

        List<Integer> codes = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            Process child = new ProcessBuilder("sh", "-c", "exit 42").start();
            codes.add(child.waitFor());
        }

        assertThat(codes).containsOnly(42);
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isEqualTo(3);
        Process after = new ProcessBuilder("sh", "-c", "sleep 0.2; exit 43").start();
        assertThat(after.waitFor()).isEqualTo(43);
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
    }

    @Test
    void aReloadWhileSleepRunsThenTheExitIsReportedWithItsStatus() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient first = shim(bundle);
        first.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        int pid = first.start().block(TIMEOUT);

        reload();

        ShimClient again = runtime.load(NS, bundle.id()).block(TIMEOUT)
                .newShimClient(ShimOpt.local(), runc).block(TIMEOUT);
        Mono<TaskEvent.TaskExit> exitEvent = again.events()
                .map(Envelope::event).ofType(TaskEvent.TaskExit.class).next().cache();
        exitEvent.subscribe();
        TaskState state = again.state().block(TIMEOUT);
        assertThat(state.status()).isEqualTo(TaskState.Status.RUNNING);
        assertThat(state.pid()).isEqualTo(pid);

        // SIGKILL: sleep runs as its namespace's init, which ignores signals it has no handler for.
        again.kill(9, false).block(TIMEOUT);

        assertThat(again.awaitExit().block(TIMEOUT).status()).isEqualTo(137);
        assertThat(exitEvent.block(TIMEOUT).exitStatus()).isEqualTo(137);
        again.delete().block(TIMEOUT);
        again.shutdown().block(TIMEOUT);
    }

    /**
     * A plugin stop while stdin is being copied into a process that does not read it: the copy ends (its source is
     * cancelled), no thread of the stopped runtime is left, and the container runs on for the next runtime.
     */
    @Test
    void aReloadWhileStdinIsCopiedEndsTheCopyLeavesNoThreadAndTheContainerRunsOn() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "600");
        ShimClient first = shim(bundle);
        byte[] chunk = new byte[64 * 1024];
        AtomicInteger given = new AtomicInteger();
        CountDownLatch sourceCancelled = new CountDownLatch(1);
        Flux<byte[]> endless = Flux.<byte[]>generate(sink -> {
            given.incrementAndGet();
            sink.next(chunk);
        }).doOnCancel(sourceCancelled::countDown);
        first.create(CreateOptions.of(Stdio.streams(endless))).block(TIMEOUT);
        int pid = first.start().block(TIMEOUT);
        // A second chunk is asked for once the first is all written: the pipe is full, the copy waits for room.
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (given.get() < 2) {
            assertThat(System.nanoTime() - deadline).as("chunks given to stdin").isNegative();
            Thread.sleep(5);
        }

        reload();

        assertThat(sourceCancelled.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("stdin's source cancelled")
                .isTrue();
        assertThat(Thread.getAllStackTraces().keySet().stream().map(Thread::getName)
                .filter(name -> name.startsWith("shim-test-") && !name.startsWith("shim-test-reloaded-")))
                .as("threads of the stopped runtime").isEmpty();
        ShimClient again = runtime.load(NS, bundle.id()).block(TIMEOUT)
                .newShimClient(ShimOpt.local(), runc).block(TIMEOUT);
        TaskState state = again.state().block(TIMEOUT);
        assertThat(state.status()).isEqualTo(TaskState.Status.RUNNING);
        assertThat(state.pid()).isEqualTo(pid);
        again.kill(9, false).block(TIMEOUT);
        assertThat(again.awaitExit().block(TIMEOUT).status()).isEqualTo(137);
        again.delete().block(TIMEOUT);
        again.shutdown().block(TIMEOUT);
    }

    /**
     * An exit published before a reload is not published again by the runtime after it: the earlier runtime of
     * this JVM reaped it, and the new one reported a made-up 137 a second time (for a started init, and for one
     * killed while created). Its status stays what the delete gives.
     */
    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void anExitPublishedBeforeAReloadIsNotPublishedAgainAfterIt(boolean started) throws Exception {
        Bundle bundle = bundle("/bin/sh", "-c", "trap 'exit 5' TERM; while true; do /bin/busybox usleep 20000; done");
        ShimClient first = shim(bundle);
        EventRecorder before = new EventRecorder(first.events());
        first.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        if (started) {
            first.start().block(TIMEOUT);
        }
        first.kill(9, false).block(TIMEOUT);
        assertThat(first.awaitExit().block(TIMEOUT).status()).isEqualTo(137);
        before.awaitTopics("/tasks/exit");
        before.close();

        reload();

        EventRecorder after = new EventRecorder(resources.exchange(temp.resolve("state"))
                .subscribe(EventFilter.all()));
        ShimClient again = runtime.load(NS, bundle.id()).block(TIMEOUT)
                .newShimClient(ShimOpt.local(), runc).block(TIMEOUT);
        assertThat(again.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.STOPPED);
        again.delete().block(TIMEOUT);
        // A repeated exit would be published as the client recovers, before the delete's event: in order here.
        after.awaitTopics("/tasks/delete");
        assertThat(after.envelopes().stream().map(Envelope::topic).toList()).containsExactly("/tasks/delete");
        after.close();
        again.shutdown().block(TIMEOUT);
    }

    /**
     * A reload between create and start: the new runtime finds the container created (runc's exec FIFO is still
     * there; only a start removes it), refuses nothing a created task allows, and its start runs the process; a
     * started one it finds running (above). The record is no longer rewritten at start.
     */
    @Test
    void aReloadBetweenCreateAndStartFindsTheContainerCreatedAndItStarts() throws Exception {
        Bundle bundle = bundle("/bin/sh", "-c", "exit 6");
        ShimClient first = shim(bundle);
        first.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        int pid = first.state().block(TIMEOUT).pid();

        reload();

        ShimClient again = runtime.load(NS, bundle.id()).block(TIMEOUT)
                .newShimClient(ShimOpt.local(), runc).block(TIMEOUT);
        TaskState state = again.state().block(TIMEOUT);
        assertThat(state.status()).isEqualTo(TaskState.Status.CREATED);
        assertThat(state.pid()).isEqualTo(pid);
        assertThat(again.start().block(TIMEOUT)).isEqualTo(pid);
        assertThat(again.awaitExit().block(TIMEOUT).status()).isEqualTo(6);
        again.delete().block(TIMEOUT);
        again.shutdown().block(TIMEOUT);

        // A reload after a start finds the container running, whatever the record says: no second start.
        Bundle other = bundle("/bin/sleep", "60");
        ShimClient started = shim(other);
        started.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        started.start().block(TIMEOUT);
        reload();
        ShimClient found = runtime.load(NS, other.id()).block(TIMEOUT)
                .newShimClient(ShimOpt.local(), runc).block(TIMEOUT);
        assertThat(found.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.RUNNING);
        StepVerifier.create(found.start()).expectError().verify(TIMEOUT);
        found.kill(9, false).block(TIMEOUT);
        assertThat(found.awaitExit().block(TIMEOUT).status()).isEqualTo(137);
        found.delete().block(TIMEOUT);
        found.shutdown().block(TIMEOUT);
    }

    @Test
    void anExitDuringTheReloadIsReportedOnceWithItsRealStatus() throws Exception {
        // The container exits once the test opens its gate, after the reload: a fixed 0.5 s ran out before the
        // reload on a loaded machine, and the old runtime reaped the exit.
        Bundle bundle = bundle("/bin/sh", "-c", "read line < /gate; exit 9");
        Path gate = bundle.rootfs().resolve("gate");
        LinuxCalls.mkfifo(gate, 0600);
        ShimClient first = shim(bundle);
        first.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        int pid = first.start().block(TIMEOUT);

        reload();
        // Opening the FIFO waits for the container's reader: on a thread of its own, bounded.
        Mono.fromCallable(() -> Files.writeString(gate, "go\n")).subscribeOn(Schedulers.boundedElastic())
                .block(TIMEOUT);
        // The container exits while no runtime watches: it waits as a zombie child of the JVM.
        awaitTrue(() -> isZombie(pid));

        EventRecorder recorder = new EventRecorder(resources.exchange(temp.resolve("state")).subscribe(
                org.shimmer.runtime.events.EventFilter.all().withTopicPrefix("/tasks/exit")));
        ShimClient again = runtime.load(NS, bundle.id()).block(TIMEOUT)
                .newShimClient(ShimOpt.local(), runc).block(TIMEOUT);

        assertThat(again.awaitExit().block(TIMEOUT).status()).isEqualTo(9);
        recorder.awaitCount(1);
        again.delete().block(TIMEOUT);
        List<TaskEvent.TaskExit> exits = recorder.envelopes().stream().map(Envelope::event)
                .map(TaskEvent.TaskExit.class::cast).toList();
        assertThat(exits).singleElement().satisfies(exit -> {
            assertThat(exit.exitStatus()).isEqualTo(9);
            assertThat(exit.pid()).isEqualTo(pid);
        });
        recorder.close();
        again.shutdown().block(TIMEOUT);
    }

    @Test
    void anExitAwaitedWhenTheRuntimeStopsFailsAsUnavailableAndAReattachReportsIt() throws Exception {
        // A plugin stopped midway must not leave a caller waiting forever for an exit nobody watches any more.
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient first = shim(bundle);
        first.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        int pid = first.start().block(TIMEOUT);
        Mono<ExitStatus> awaited = first.awaitExit().cache();
        awaited.subscribe(exit -> {}, error -> {});

        reload();

        StepVerifier.create(awaited).expectErrorSatisfies(error -> assertThat(error)
                .isInstanceOf(UnavailableException.class).hasMessageContaining(Integer.toString(pid)))
                .verify(TIMEOUT);
        ShimClient again = runtime.load(NS, bundle.id()).block(TIMEOUT)
                .newShimClient(ShimOpt.local(), runc).block(TIMEOUT);
        assertThat(again.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.RUNNING);
        again.kill(9, false).block(TIMEOUT);
        assertThat(again.awaitExit().block(TIMEOUT).status()).isEqualTo(137);
        again.delete().block(TIMEOUT);
        again.shutdown().block(TIMEOUT);
    }

    @Test
    void stoppingTheRuntimeWhileContainersStreamTouchesNoClosedDescriptor() throws Exception {
        // Issue 9, finding 4: every stop logged "Bell … write fd N: Bad file descriptor".
        String loop = "while true; do echo tick; sleep 0.05; done";
        byte[] execLoop = ("{\"args\": [\"/bin/sh\", \"-c\", \"" + loop + "\"], \"cwd\": \"/\", "
                + "\"env\": [\"PATH=/bin\"], \"user\": {\"uid\": 0, \"gid\": 0}}").getBytes(UTF_8);
        List<Bundle> running = List.of(bundle("/bin/sh", "-c", loop), bundle("/bin/sh", "-c", loop));
        List<Mono<String>> firstLines = new ArrayList<>();
        for (Bundle bundle : running) {
            ShimClient shim = shim(bundle);
            ProcessIo io = shim.create(CreateOptions.of(Stdio.streams(Flux.never()))).block(TIMEOUT);
            firstLines.add(firstLine(io));
            shim.start().block(TIMEOUT);
            ProcessIo exec = shim.exec("ticker", execLoop, Stdio.streams(Flux.never())).block(TIMEOUT);
            firstLines.add(firstLine(exec));
            shim.start("ticker").block(TIMEOUT);
        }
        for (Mono<String> line : firstLines) {
            assertThat(line.block(TIMEOUT)).startsWith("tick\n");
        }

        try (LogCapture log = LogCapture.start()) {
            reload();
            assertThat(log.text()).doesNotContain("Bad file descriptor").doesNotContain("could not wake");
        }

        for (Bundle bundle : running) {
            ShimClient again = runtime.load(NS, bundle.id()).block(TIMEOUT)
                    .newShimClient(ShimOpt.local(), runc).block(TIMEOUT);
            assertThat(again.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.RUNNING);
            stop(again);
        }
        awaitTrue(() -> Zombies.ofThisJvm().isEmpty());
    }

    /**
     * A runtime that stops while its {@code runc create} runs a slow hook does not wait for the create: the stop
     * ends runc with the hook (and the hook's own child), so the hook never gets to its end, and the create fails
     * with {@link UnavailableException}. The stop waited for the create to end on its own, up to the io scheduler's
     * 10 s, and only then ended it. What runc made by then (its state, the container's cgroup) is removed by the
     * next runtime, and nothing is left.
     */
    @Test
    void aStopDuringACreateEndsItsRuncWithoutWaitingForItsHook() throws Exception {
        String id = "cut-" + UUID.randomUUID().toString().substring(0, 8);
        Path began = temp.resolve("hook-began");
        Path ended = temp.resolve("hook-ended");
        ObjectMapper json = new ObjectMapper();
        ObjectNode spec = (ObjectNode) json.readTree(BusyboxBundle.spec(Files.createDirectories(temp.resolve("specs")),
                "/bin/true"));
        // The runtime's own name for the cgroup, which a forced delete removes (runc's default, /<id>, it leaves).
        ((ObjectNode) spec.path("linux")).put("cgroupsPath", CgroupPaths.of(temp.resolve("state"), NS, id));
        // Long enough for the stop to end it first, short enough to end within the stop's 10 s it waited for.
        spec.putObject("hooks").putArray("createRuntime").addObject().put("path", "/bin/sh").putArray("args")
                .add("sh").add("-c").add(": > " + began + "; sleep 5; : > " + ended);
        Bundle bundle = runtime.create(NS, id, json.writeValueAsBytes(spec)).block(TIMEOUT);
        BusyboxBundle.writeRootfs(bundle.rootfs());
        bundles.add(bundle);
        ShimClient shim = shim(bundle);
        Map<Integer, String> fdsBefore = Leaks.openFds();

        CompletableFuture<ProcessIo> created = shim.create(CreateOptions.of(Stdio.none())).toFuture();
        awaitTrue(() -> Files.exists(began));
        resources.close();

        assertThat(ended).as("the end of the hook, had the stop waited for the create").doesNotExist();
        StepVerifier.create(Mono.fromFuture(created)).expectErrorSatisfies(error -> assertThat(error)
                .isInstanceOf(UnavailableException.class)
                // Why the create failed (runc was ended), not why its undo did (the io scheduler took no more work).
                .hasMessage("create task " + NS + "/" + id + ": runc create of " + id
                        + " was ended: the runtime stopped"))
                .verify(TIMEOUT);

        resources = new RuntimeResources("shim-test-reloaded-");
        runtime = new LinuxRuntime(config(), resources);
        runtime.forceDelete(NS, id).block(TIMEOUT);
        assertThat(runtime.inspect(NS, id).block(TIMEOUT).present()).as("the bundle").isFalse();
        assertNothingLeaks(bundle, fdsBefore);
        assertThat(ended).as("the end of the hook").doesNotExist();
        CgroupsLeft.assertNoneUnder(temp.resolve("state"), NS);
    }

    /**
     * The next runtime's create of the task a stop cut during its {@code runc create} (runc had made its state
     * directory, not yet its container) is refused naming the way out, {@code forceDelete} of the namespace and id:
     * runc's "container with given ID already exists" named none, while the task's state and delete called it not
     * created and the bundle's delete called it in use. Doing what it says frees the id: the create then works.
     */
    @Test
    void aCreateOverWhatAStopCutCreateLeftNamesForceDeleteWhichFreesTheTask() throws Exception {
        String id = "cut-" + UUID.randomUUID().toString().substring(0, 8);
        Path began = temp.resolve("hook-began");
        ObjectMapper json = new ObjectMapper();
        ObjectNode spec = (ObjectNode) json.readTree(BusyboxBundle.spec(Files.createDirectories(temp.resolve("specs")),
                "/bin/true"));
        ((ObjectNode) spec.path("linux")).put("cgroupsPath", CgroupPaths.of(temp.resolve("state"), NS, id));
        spec.putObject("hooks").putArray("createRuntime").addObject().put("path", "/bin/sh").putArray("args")
                .add("sh").add("-c").add(": > " + began + "; sleep 5");
        Bundle bundle = runtime.create(NS, id, json.writeValueAsBytes(spec)).block(TIMEOUT);
        BusyboxBundle.writeRootfs(bundle.rootfs());
        bundles.add(bundle);
        Map<Integer, String> fdsBefore = Leaks.openFds();
        CompletableFuture<ProcessIo> created = shim(bundle).create(CreateOptions.of(Stdio.none())).toFuture();
        awaitTrue(() -> Files.exists(began));
        resources.close();
        StepVerifier.create(Mono.fromFuture(created)).expectError(UnavailableException.class).verify(TIMEOUT);

        resources = new RuntimeResources("shim-test-reloaded-");
        runtime = new LinuxRuntime(config(), resources);
        ShimClient again = shim(runtime.load(NS, id).block(TIMEOUT));
        StepVerifier.create(again.create(CreateOptions.of(Stdio.none()))).expectErrorSatisfies(error ->
                assertThat(error).isInstanceOf(AlreadyExistsException.class)
                        .hasMessageContaining("runc create failed: container with given ID already exists")
                        .hasMessageContaining("RuntimePlugin.forceDelete(\"" + NS + "\", \"" + id + "\") removes it"))
                .verify(TIMEOUT);
        again.shutdown().block(TIMEOUT);
        // With what the reloaded runtime opened for its life on its first create (its exit monitor's descriptors).
        fdsBefore.putAll(Leaks.openFds());

        runtime.forceDelete(NS, id).block(TIMEOUT);
        assertNothingLeaks(bundle, fdsBefore);
        spec.remove("hooks");
        Bundle freed = runtime.create(NS, id, json.writeValueAsBytes(spec)).block(TIMEOUT);
        BusyboxBundle.writeRootfs(freed.rootfs());
        ShimClient fresh = shim(freed);
        fresh.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        fresh.start().block(TIMEOUT);
        assertThat(fresh.awaitExit().block(TIMEOUT).status()).isZero();
        fresh.delete().block(TIMEOUT);
        fresh.shutdown().block(TIMEOUT);
        runtime.delete(NS, id).block(TIMEOUT);
        assertThat(Leaks.runcContainers(Path.of(runc.runtimeRoot()).resolve(NS))).as("runc containers").isEmpty();
        CgroupsLeft.assertNoneUnder(temp.resolve("state"), NS);
    }

    /** The first chunk of output, read while the rest keeps flowing to the same subscriber. */
    private Mono<String> firstLine(ProcessIo io) {
        Sinks.One<String> first = Sinks.one();
        io.stdout().map(bytes -> new String(bytes, UTF_8)).subscribe(first::tryEmitValue);
        return first.asMono();
    }

    @Test
    void aSecondCreateIsAlreadyExistsAndLeavesTheFirstContainerRunning() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient shim = shim(bundle);
        shim.create(CreateOptions.of(Stdio.streams(null))).block(TIMEOUT);
        int pid = shim.start().block(TIMEOUT);

        for (Stdio stdio : List.of(Stdio.streams(null), Stdio.none())) {
            StepVerifier.create(shim.create(CreateOptions.of(stdio)))
                    .expectErrorSatisfies(e -> assertThat(e)
                            .isInstanceOf(AlreadyExistsException.class)
                            .hasMessage("create task " + NS + "/" + bundle.id() + ": already exists"))
                    .verify(TIMEOUT);
        }

        TaskState state = shim.state().block(TIMEOUT);
        assertThat(state.status()).isEqualTo(TaskState.Status.RUNNING);
        assertThat(state.pid()).isEqualTo(pid);
        stop(shim);
    }

    /**
     * The work root's blocks are gone but inodes are left, so each record's file is made and nothing fits in it:
     * the create failed with a bare "No space left on device" naming no file, and left the empty
     * {@code .rootfs-mounts.json.partial} (or {@code .local.json.partial}, once runc had created) behind. Each
     * failure now names the file that did not fit (runc names its pid file itself) and leaves none; the create works
     * once there is room.
     */
    @Test
    void aRecordThatDoesNotFitOnTheWorkRootIsNamedAndLeavesNoPartialFile() throws Exception {
        Path workRoot = Files.createDirectories(temp.resolve("full-work"));
        Path image = Files.createDirectories(temp.resolve("image"));
        BusyboxBundle.writeRootfs(image);
        CreateOptions options = new CreateOptions(List.of(Mount.readOnlyBind(image)), Stdio.none());
        try (FullTmpfs disk = FullTmpfs.mount(workRoot)) {
            LinuxRuntime onFullDisk = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), workRoot), resources);
            Bundle bundle = onFullDisk.create(NS, "full-" + UUID.randomUUID().toString().substring(0, 8),
                    BusyboxBundle.spec(Files.createDirectories(temp.resolve("specs")), "/bin/true")).block(TIMEOUT);
            ShimClient shim = shim(bundle);
            // Blocks for what fits: nothing; the rootfs mounts' record; that and runc's pid file (then runc created).
            List<String> notFitting = List.of("rootfs-mounts.json", ".init.pid", "local.json");
            for (int blocks = 0; blocks < notFitting.size(); blocks++) {
                disk.fill();
                disk.free(blocks);
                disk.freeInodes(4);
                String record = notFitting.get(blocks);

                StepVerifier.create(shim.create(options))
                        .expectErrorSatisfies(e -> {
                            assertExhausted(e, bundle);
                            assertThat(e).hasMessageContaining(bundle.workDir().resolve(record).toString());
                        })
                        .verify(TIMEOUT);

                assertThat(workFiles(bundle)).as("files left by a create that did not fit " + record)
                        .containsExactly(bundle.workDir(), bundle.workDir().resolve("launch.json"));
                assertNothingHalfMade(bundle);
                disk.empty();
            }
            shim.create(options).block(TIMEOUT);
            shim.start().block(TIMEOUT);
            assertThat(shim.awaitExit().block(TIMEOUT).status()).isZero();
            shim.delete().block(TIMEOUT);
            shim.shutdown().block(TIMEOUT);
            onFullDisk.delete(NS, bundle.id()).block(TIMEOUT);
        }
    }

    /** What a plugin reload does to the runtime: every resource ends, new ones start, the JVM stays. */
    private void reload() {
        resources.close();
        resources = new RuntimeResources("shim-test-reloaded-");
        runtime = new LinuxRuntime(config(), resources);
    }

    private static boolean isZombie(int pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Integer.toString(pid), "stat"));
            return stat.charAt(stat.lastIndexOf(')') + 2) == 'Z';
        } catch (java.io.IOException gone) {
            return false;
        }
    }
}
