package org.shimmer.runtime.linux.container;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.Empty;
import io.netty.util.concurrent.EventExecutor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.reactivestreams.Publisher;
import org.reactivestreams.Subscription;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.ExecProcess;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.InvalidIdentifierException;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.events.Backlog;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.EventFilter;
import org.shimmer.runtime.events.InMemoryEventExchange;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.shim.TaskEvents;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Latches;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.Leftovers;
import org.shimmer.runtime.linux.testing.NettyLeakDetection;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.linux.testing.Zombies;
import org.shimmer.runtime.linux.ttrpc.CallOptions;
import org.shimmer.runtime.linux.ttrpc.TtrpcClient;
import org.shimmer.runtime.linux.ttrpc.TtrpcConnection;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TerminalSize;
import org.shimmer.runtime.spec.Capabilities;
import org.shimmer.runtime.spec.Spec;
import reactor.core.Disposable;
import reactor.core.Scannable;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import reactor.test.StepVerifier;

/**
 * {@code RuntimePlugin.run} and the {@link Container} handle, through both shims, with real runc and busybox: output,
 * exit, exec, kill, and that a release — after success, error, cancel, a dead shim, or a run cancelled anywhere —
 * leaves nothing (bundles, runc containers, processes, mounts, zombies, descriptors).
 */
@ExtendWith(NettyLeakDetection.class)
class ContainerTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "container-test";
    private static final Path SHIM = Path.of("containerd-shim-runc-v2");
    private static final int MIB = 1 << 20;

    @TempDir
    Path temp;

    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private RuncOptions runc;
    private Path rootfs;

    @BeforeEach
    void startRuntime() throws Exception {
        resources = new RuntimeResources("container-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
        runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
        rootfs = Files.createDirectories(temp.resolve("rootfs"));
        BusyboxBundle.writeRootfs(rootfs);
    }

    @AfterEach
    void checkNothingIsLeft() throws Exception {
        try {
            assertNothingLeft();
        } finally {
            resources.close();
        }
    }

    private ShimOpt shim(String kind) {
        return switch (kind) {
            case "local" -> ShimOpt.local();
            case "remote" -> ShimOpt.remote(SHIM, temp.resolve("daemon.sock").toString(), null, false, null);
            default -> throw new IllegalArgumentException(kind);
        };
    }

    private RunRequest request(String kind, String... args) {
        return named(kind, "c-" + UUID.randomUUID().toString().substring(0, 8), args);
    }

    private RunRequest named(String kind, String id, String... args) {
        return RunRequest.of(NS, id, Spec.builder().args(args).build(), rootfs).withShim(shim(kind))
                .withRuncOptions(runc);
    }

    private static Mono<String> text(Flux<byte[]> chunks) {
        return chunks.map(bytes -> new String(bytes, UTF_8)).reduce("", String::concat);
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void echoGivesItsOutputAndExitAndTheReleaseLeavesNothing(String kind) {
        RunRequest request = request(kind, "/bin/sh", "-c", "echo hello; echo oops >&2; exit 3");

        StepVerifier.create(Mono.usingWhen(runtime.run(request),
                        container -> Mono.zip(text(container.stdout()), text(container.stderr()), container.exit()),
                        Container::release))
                .assertNext(result -> {
                    assertThat(result.getT1()).isEqualTo("hello\n");
                    assertThat(result.getT2()).isEqualTo("oops\n");
                    assertThat(result.getT3().status()).isEqualTo(3);
                })
                .verifyComplete();
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void usingWhenReleasesWhenTheWorkFails(String kind) {
        AtomicReference<Container> made = new AtomicReference<>();
        StepVerifier.create(Mono.usingWhen(runtime.run(request(kind, "/bin/sleep", "30")), container -> {
                    made.set(container);
                    return Mono.error(new IllegalStateException("the host's work failed"));
                }, Container::release))
                .verifyErrorMessage("the host's work failed");
        assertThat(made.get().exit().block(TIMEOUT).status()).isEqualTo(137);
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void usingWhenReleasesWhenItsSubscriberCancels(String kind) {
        Sinks.One<Container> made = Sinks.one();
        StepVerifier.create(Mono.usingWhen(runtime.run(request(kind, "/bin/sleep", "30")), container -> {
                    made.tryEmitValue(container);
                    return Mono.never();
                }, Container::release))
                .expectSubscription()
                .then(() -> made.asMono().block(TIMEOUT))
                .thenCancel()
                .verify(TIMEOUT);
        // The release usingWhen started on cancel is the one every later call shares: its end is this one's.
        StepVerifier.create(made.asMono().block(TIMEOUT).release()).verifyComplete();
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void releaseIsIdempotentAndConcurrentCallsShareIt(String kind) {
        Container container = runtime.run(request(kind, "/bin/sleep", "30")).block(TIMEOUT);

        StepVerifier.create(Flux.range(0, 8).flatMap(i -> container.release().subscribeOn(resources.io()))
                        .then(container.release()))
                .verifyComplete();
        StepVerifier.create(container.release()).verifyComplete();
        assertThat(container.exit().block(TIMEOUT).status()).isEqualTo(137);
    }

    /**
     * A plugin stop is a detach: the container runs on, and what the host kept from the stopped plugin (the
     * container's handle, the runtime view) answers {@link UnavailableException} saying the runtime stopped. They
     * answered Reactor's bare {@code RejectedExecutionException} ("Scheduler unavailable"), or an {@code INTERNAL}
     * {@code ShimException} carrying it.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void afterThePluginStopsTheContainerAndTheRuntimeItCameFromAnswerUnavailable(String kind) {
        Container container = runtime.run(request(kind, "/bin/sleep", "600")).block(TIMEOUT);
        resources.close();
        try {
            assertEveryCallAnswersUnavailable(kind, container);
        } finally {
            findRunningAfterTheStopAndRemove(container);
        }
    }

    /** The next plugin's runtime finds the container running after the stop, and removes it. */
    private void findRunningAfterTheStopAndRemove(Container container) {
        resources = new RuntimeResources("container-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
        try {
            assertThat(runtime.inspect(NS, container.id()).block(TIMEOUT).container()).as("after the stop")
                    .hasValueSatisfying(found -> assertThat(found.status()).isEqualTo("running"));
        } finally {
            runtime.forceDelete(NS, container.id()).block(TIMEOUT);
        }
    }

    /**
     * A release the plugin stop refused released nothing: the container runs on for the next runtime, so the
     * handle's calls after it still say the runtime stopped, not that the container was released.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void callsAfterAReleaseThePluginStopRefusedStillAnswerUnavailable(String kind) {
        Container container = runtime.run(request(kind, "/bin/sleep", "600")).block(TIMEOUT);
        resources.close();
        try {
            StepVerifier.create(container.release()).expectError(UnavailableException.class).verify(TIMEOUT);
            assertEveryCallAnswersUnavailable(kind, container);
        } finally {
            findRunningAfterTheStopAndRemove(container);
        }
    }

    /**
     * A plugin stop while someone reads a running container's output tells the reader the runtime stopped, as
     * {@code exit()} does: the stream completed, which says the process closed its output, while it ran on.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aReaderOfTheOutputLearnsThatThePluginStoppedNotThatTheOutputEnded(String kind) {
        Container container = runtime.run(request(kind, "/bin/sleep", "600")).block(TIMEOUT);
        Sinks.One<String> stdoutEnd = Sinks.one();
        Disposable reading = container.stdout().subscribe(chunk -> { },
                error -> stdoutEnd.tryEmitValue(error.getClass().getSimpleName() + ": " + error.getMessage()),
                () -> stdoutEnd.tryEmitValue("completed"));
        resources.close();
        try {
            assertThat(stdoutEnd.asMono().block(TIMEOUT)).startsWith("UnavailableException: ")
                    .contains("the runtime stopped");
        } finally {
            reading.dispose();
            resources = new RuntimeResources("container-test-");
            runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
            runtime.forceDelete(NS, container.id()).block(TIMEOUT);
        }
    }

    /**
     * A container's events complete with the runtime's stop, as {@link Container#events()} says, also when the host
     * gave its own exchange: that exchange outlives the stop, and the subscriber waited past it for good.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aContainersEventsCompleteWithThePluginStopAlsoOnTheHostsOwnExchange(String kind) {
        InMemoryEventExchange host = new InMemoryEventExchange();
        RuntimePlugin view = runtime.withConfig(new RuntimeConfig(temp.resolve("state"), temp.resolve("work"))
                .withEvents(host));
        Container container = view.run(request(kind, "/bin/sleep", "600")).block(TIMEOUT);
        Sinks.One<String> eventsEnd = Sinks.one();
        Disposable watching = container.events().subscribe(envelope -> { },
                error -> eventsEnd.tryEmitValue(error.getClass().getSimpleName() + ": " + error.getMessage()),
                () -> eventsEnd.tryEmitValue("completed"));
        resources.close();
        try {
            assertThat(eventsEnd.asMono().block(TIMEOUT)).as("the container's events at the stop")
                    .isEqualTo("completed");
        } finally {
            watching.dispose();
            resources = new RuntimeResources("container-test-");
            runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
            runtime.forceDelete(NS, container.id()).block(TIMEOUT);
        }
    }

    /**
     * A plugin stop ends the exit of a running exec, and of its container, with {@link UnavailableException} (both
     * run on), whether the host subscribed before the stop or after it, also when the stop finds the event loops
     * busy running tasks (as while they handle a shim's answers). A loop stopped with no quiet period then ended
     * without closing its channels: the Wait calls in flight on the shim's connection never ended, nor the exits
     * waiting for them, and the connection's socket stayed open.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void exitsAwaitedWhenThePluginStopsEndWithUnavailableThoughTheLoopsAreBusy(String kind) {
        Container container = runtime.run(request(kind, "/bin/sleep", "600")).block(TIMEOUT);
        try {
            ExecProcess exec = container.exec("e1", "/bin/sleep", "600").block(TIMEOUT);
            Mono<String> execEnd = ending(exec.exit());
            Mono<String> initEnd = ending(container.exit());
            keepTheLoopsBusyUntilTheyStop();
            resources.close();
            assertThat(execEnd.block(TIMEOUT)).as("exec exit subscribed before the stop")
                    .isEqualTo("UnavailableException");
            assertThat(initEnd.block(TIMEOUT)).as("init exit subscribed before the stop")
                    .isEqualTo("UnavailableException");
            assertThat(ending(exec.exit()).block(TIMEOUT)).as("exec exit subscribed after the stop")
                    .isEqualTo("UnavailableException");
            assertThat(ending(container.exit()).block(TIMEOUT)).as("init exit subscribed after the stop")
                    .isEqualTo("UnavailableException");
        } finally {
            // The next plugin's runtime finds the container running, and removes it.
            resources = new RuntimeResources("container-test-");
            runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
            runtime.forceDelete(NS, container.id()).block(TIMEOUT);
        }
    }

    /**
     * A plugin stop ends a task state asked of a shim that does not answer (SIGSTOPped), also when it finds the event
     * loops busy: its call's deadline is a timer of its loop, and a loop that ended without closing the probe's
     * connection dropped the timer, so the state was never told.
     */
    @Test
    void aTaskStateInFlightWhenThePluginStopsEndsThoughTheLoopsAreBusy() throws Exception {
        Container container = runtime.run(request("remote", "/bin/sleep", "600")).block(TIMEOUT);
        ProcessHandle shim = shimDaemonOf(container);
        try {
            Processes.stop(shim.pid());
            Mono<String> state = runtime.taskState(NS, container.id())
                    .map(found -> "state " + found.status())
                    .onErrorResume(error -> Mono.just(error.getClass().getSimpleName()))
                    .defaultIfEmpty("empty")
                    .cache();
            state.subscribe();
            // The probe dials and sends its State at once; the stopped shim's socket still accepts.
            Thread.sleep(500);
            keepTheLoopsBusyUntilTheyStop();
            resources.close();
            // Cut short by the stop, the probe got no answer; "empty" would say no shim runs for the bundle.
            assertThat(state.block(TIMEOUT)).isEqualTo("UnavailableException");
        } finally {
            Processes.run(temp, "kill", "-CONT", Long.toString(shim.pid()));
            resources = new RuntimeResources("container-test-");
            runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
            runtime.forceDelete(NS, container.id()).block(TIMEOUT);
        }
    }

    /** How {@code exit} ends, subscribed now: "exit N", the error's simple class name, or "empty"; cached. */
    private static Mono<String> ending(Mono<ExitStatus> exit) {
        Mono<String> end = exit.map(status -> "exit " + status.status())
                .onErrorResume(error -> Mono.just(error.getClass().getSimpleName()))
                .defaultIfEmpty("empty")
                .cache();
        end.subscribe();
        return end;
    }

    /**
     * Keeps each client event loop running tasks, a millisecond each, until its stop begins: the stop then arrives
     * while the loop runs tasks (it looked for a stop just before), not while it waits in select.
     */
    private void keepTheLoopsBusyUntilTheyStop() {
        for (EventExecutor loop : resources.loops().onClient(false)) {
            loop.execute(new Runnable() {
                @Override
                public void run() {
                    if (!loop.isShuttingDown()) {
                        LockSupport.parkNanos(1_000_000);
                        loop.execute(this);
                    }
                }
            });
        }
    }

    /** Each call of {@code container} and of the stopped {@link #runtime} fails with UnavailableException. */
    private void assertEveryCallAnswersUnavailable(String kind, Container container) {
        Map<String, Mono<?>> calls = new LinkedHashMap<>();
        calls.put("kill", container.kill(15));
        // A subscriber the stopped output scheduler refuses is told so, never left waiting.
        calls.put("stdout", container.stdout().then());
        calls.put("exec", container.exec("e1", "/bin/true"));
        calls.put("stats", container.stats());
        calls.put("release", container.release());
        calls.put("run", runtime.run(request(kind, "/bin/true")));
        calls.put("create", runtime.create(NS, "other", Spec.builder().args("/bin/true").build()));
        calls.put("inspect", runtime.inspect(NS, container.id()));
        calls.put("forceDelete", runtime.forceDelete(NS, container.id()));
        calls.forEach((call, mono) -> StepVerifier.create(mono)
                .expectErrorSatisfies(e -> assertThat(e).as(call).isInstanceOf(UnavailableException.class)
                        .hasMessageNotContaining("Scheduler unavailable"))
                .verify(TIMEOUT));
    }

    /**
     * {@code events()} completes once the container was released, its last envelope the init's
     * {@code /tasks/delete}; a subscription made after the release completes at once. It never completed: a host
     * that collected a container's events waited for good.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void eventsCompleteAfterTheReleaseWithTheDeleteLastAndALaterSubscriptionCompletesAtOnce(String kind) {
        Container container = runtime.run(request(kind, "/bin/sleep", "600")).block(TIMEOUT);
        Mono<List<Object>> events = container.events().map(Envelope::event).collectList().cache();
        Disposable collecting = events.subscribe();
        try {
            container.release().block(TIMEOUT);
            StepVerifier.create(events)
                    .assertNext(seen -> {
                        assertThat(seen).last().isEqualTo(new TaskEvent.TaskDelete(container.id(), container.pid(),
                                137, ((TaskEvent.TaskDelete) seen.getLast()).exitedAt()));
                        assertThat(seen).filteredOn(TaskEvent.TaskExit.class::isInstance).hasSize(1);
                    })
                    .expectComplete()
                    .verify(TIMEOUT);
            StepVerifier.create(container.events()).expectComplete().verify(TIMEOUT);
        } finally {
            collecting.dispose();
        }
    }

    /**
     * A subscriber that falls behind still gets the init's {@code /tasks/delete}, last: busy with the exit for
     * longer than the end's wait, it had the delete in its backlog, and that wait (meant for a remote shim's forward
     * that never came) ended the subscription with the delete undelivered.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aSubscriberBusyPastTheLastEventWaitStillGetsTheDeleteLast(String kind) {
        Container container = runtime.run(request(kind, "/bin/sleep", "600")).block(TIMEOUT);
        Mono<List<Object>> events = container.events().map(Envelope::event)
                .doOnNext(event -> {
                    if (event instanceof TaskEvent.TaskExit) {
                        // Behind by more than the wait: the delete and the release's end come meanwhile.
                        sleep(LinuxContainer.LAST_EVENT_WAIT.multipliedBy(2));
                    }
                })
                .collectList().cache();
        Disposable collecting = events.subscribe();
        try {
            container.release().block(TIMEOUT);
            StepVerifier.create(events)
                    .assertNext(seen -> {
                        assertThat(seen).last().isInstanceOf(TaskEvent.TaskDelete.class);
                        assertThat(seen).filteredOn(TaskEvent.TaskExit.class::isInstance).hasSize(1);
                    })
                    .expectComplete()
                    .verify(TIMEOUT);
        } finally {
            collecting.dispose();
        }
    }

    private static void sleep(Duration duration) {
        try {
            Thread.sleep(duration);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /**
     * Every call of a released container's handle is refused naming its operation and the container, alike on
     * both shims, saying it was released: a remote {@code stats()} named "get state of", the call it makes first,
     * and the local shim answered "container not created".
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void everyCallAfterTheReleaseIsRefusedNamingItsOperationAndTheContainer(String kind) {
        Container container = runtime.run(request(kind, "/bin/sleep", "600")).block(TIMEOUT);
        container.release().block(TIMEOUT);
        String name = NS + "/" + container.id();

        Map<String, Mono<?>> calls = new LinkedHashMap<>();
        calls.put("kill", container.kill(15));
        calls.put("exec", container.exec("e1", "/bin/true"));
        calls.put("stats", container.stats());
        calls.put("resize", container.resize(TerminalSize.DEFAULT));
        Map<String, String> refusals = new LinkedHashMap<>();
        calls.forEach((call, mono) -> StepVerifier.create(mono)
                .expectErrorSatisfies(e -> {
                    refusals.put(call, e.getClass().getSimpleName() + ": " + e.getMessage());
                    assertThat(e).as(call).isInstanceOf(ShimmerException.class);
                })
                .verify(TIMEOUT));
        System.out.printf("%s: after the release %s%n", kind, refusals);
        refusals.forEach((call, refusal) -> assertThat(refusal).as(call).startsWith("NotFoundException: ")
                .contains(call).contains(name).endsWith("it was released"));
        // The shim client's own answer names the stats too, not the state call it begins with.
        StepVerifier.create(container.shim().stats())
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(ShimmerException.class)
                        .hasMessageStartingWith("get stats of task " + name).hasMessageNotContaining("state"))
                .verify(TIMEOUT);
        StepVerifier.create(container.release()).verifyComplete();
        assertThat(container.exit().block(TIMEOUT).status()).isEqualTo(137);
    }

    /**
     * A call that loses the race to a release begun meanwhile says so, alike on both shims, its shim's error kept as
     * the cause: an exec answered runc's own "error executing setns process", a stats() "runc events failed", and
     * on the remote shim either could say "detached from its shim; connect() again".
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void callsThatLoseTheRaceToTheReleaseSayTheContainerIsBeingReleased(String kind) {
        Map<String, Integer> outcomes = new HashMap<>();
        for (int round = 0; round < 5; round++) {
            Container container = runtime.run(request(kind, "/bin/sleep", "600")).block(TIMEOUT);
            // Merged first: the release has begun when the calls are made.
            List<Mono<String>> calls = new ArrayList<>(List.of(container.release().then(Mono.<String>empty())));
            for (int i = 0; i < 4; i++) {
                calls.add(container.exec("e" + i, "/bin/sleep", "600").thenReturn("exec"));
                calls.add(container.stats().thenReturn("stats"));
            }
            calls.add(container.kill(15).thenReturn("kill"));
            String name = NS + "/" + container.id();
            StepVerifier.create(Flux.merge(calls.stream().map(call -> call.onErrorResume(failure -> {
                        assertThat(failure).isInstanceOf(ShimmerException.class);
                        assertThat(failure.getMessage()).contains(" container " + name + ": it ")
                                .contains(" released");
                        return Mono.just("refused");
                    })).toList()).doOnNext(outcome -> outcomes.merge(outcome, 1, Integer::sum)).then())
                    .expectComplete()
                    .verify(TIMEOUT);
        }
        System.out.printf("%s: calls racing the release %s%n", kind, outcomes);
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void anExecAfterTheReleaseIsRefusedMakesNothingAndTheIdRunsAgain(String kind) {
        String id = "r-" + UUID.randomUUID().toString().substring(0, 8);
        Path work = temp.resolve("work").resolve(NS).resolve(id);
        Container container = runtime.run(named(kind, id, "/bin/sleep", "600")).block(TIMEOUT);
        container.release().block(TIMEOUT);
        assertThat(work).doesNotExist();

        for (Stdio stdio : List.of(Stdio.streams(null), Stdio.none())) {
            StepVerifier.create(container.exec("x", Spec.builder().args("/bin/true").build().process(), stdio))
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(ShimmerException.class)
                            .hasMessageContaining(id))
                    .verify(TIMEOUT);
            assertThat(work).doesNotExist();
        }

        StepVerifier.create(Mono.usingWhen(runtime.run(named(kind, id, "/bin/sh", "-c", "echo again")),
                        again -> text(again.stdout()), Container::release))
                .expectNext("again\n")
                .verifyComplete();
    }

    @Test
    void releaseAfterTheShimWasKilledLeavesNothing() throws Exception {
        Container container = runtime.run(request("remote", "/bin/sleep", "30")).block(TIMEOUT);
        ProcessHandle shim = shimDaemonOf(container);
        shim.destroyForcibly();
        assertThat(Processes.awaitGone(shim.pid(), TIMEOUT)).isTrue();

        StepVerifier.create(container.release()).verifyComplete();
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void fiftyMegabytesWithStdoutIgnoredRunToTheirEnd(String kind) {
        RunRequest request = request(kind, "/bin/busybox", "dd", "if=/dev/zero", "bs=1048576", "count=50");

        long began = System.nanoTime();
        Container container = runtime.run(request).block(TIMEOUT);
        try {
            StepVerifier.create(container.exit().map(ExitStatus::status)).expectNext(0).verifyComplete();
            Duration took = Duration.ofNanos(System.nanoTime() - began);
            assertThat(took).isLessThan(Duration.ofSeconds(20));
            // Everything was read; the newest bound's worth waits for a late reader, the rest was dropped.
            assertThat(container.droppedStdoutBytes()).isEqualTo(49L * MIB);
            StepVerifier.create(container.stdout().map(chunk -> chunk.length).reduce(0, Integer::sum))
                    .expectNext(MIB).verifyComplete();
            System.out.printf("%s: 50 MiB to an ignored stdout, run to exit in %d ms%n", kind, took.toMillis());
        } finally {
            container.release().block(TIMEOUT);
        }
    }

    /**
     * {@code withOutputBuffer(0)} keeps nothing for nobody, but a subscriber waiting for output gets it: the bound
     * dropped every chunk before the subscriber that asked for it could take it, and it read nothing at all.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aSubscriberWaitingOnAStreamThatKeepsNothingGetsWhatComes(String kind) {
        RunRequest request = request(kind, "/bin/sh", "-c", "sleep 1; echo one; sleep 1; echo two >&2; exit 5")
                .withOutputBuffer(0);

        StepVerifier.create(Mono.usingWhen(runtime.run(request),
                        container -> Mono.zip(text(container.stdout()), text(container.stderr()), container.exit()),
                        Container::release))
                .assertNext(result -> {
                    assertThat(result.getT1()).isEqualTo("one\n");
                    assertThat(result.getT2()).isEqualTo("two\n");
                    assertThat(result.getT3().status()).isEqualTo(5);
                })
                .verifyComplete();
    }

    /**
     * A stdin publisher that breaks the rules (its subscribe or request throws, it sends null) ends stdin as its
     * error would: the throw escaped to the io thread, Reactor logged it as its scheduler's, and {@code cat} waited
     * for the rest of its stdin for good.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aStdinPublisherThatBreaksTheRulesEndsStdinAsAnErrorWould(String kind) {
        Map<String, Publisher<byte[]>> broken = new LinkedHashMap<>();
        broken.put("subscribe throws", subscriber -> {
            throw new IllegalStateException("subscribe threw");
        });
        broken.put("request throws", subscriber -> subscriber.onSubscribe(new Subscription() {
            @Override
            public void request(long n) {
                throw new IllegalStateException("request threw");
            }

            @Override
            public void cancel() {}
        }));
        broken.put("null chunk", subscriber -> subscriber.onSubscribe(new Subscription() {
            private int asked;

            @Override
            public void request(long n) {
                subscriber.onNext(asked++ == 0 ? "first\n".getBytes(UTF_8) : null);
            }

            @Override
            public void cancel() {}
        }));
        broken.forEach((how, stdin) -> StepVerifier.create(Mono.usingWhen(
                                runtime.run(request(kind, "/bin/cat").withStdin(stdin)),
                                container -> Mono.zip(text(container.stdout()), container.exit()),
                                Container::release))
                        .assertNext(result -> {
                            assertThat(result.getT1()).as(how).isEqualTo(how.equals("null chunk") ? "first\n" : "");
                            assertThat(result.getT2().status()).as(how).isZero();
                        })
                        .expectComplete()
                        .verify(TIMEOUT));
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void takeOneOnStdoutLeavesTheContainerRunningAndALaterSubscriberGetsWhatFollows(String kind) {
        Sinks.Many<byte[]> stdin = Sinks.many().unicast().onBackpressureBuffer();
        RunRequest request = request(kind, "/bin/sh", "-c", "echo first; read line; echo after $line; exit 4")
                .withStdin(stdin.asFlux());

        StepVerifier.create(Mono.usingWhen(runtime.run(request), container -> container.stdout().take(1)
                                .map(chunk -> new String(chunk, UTF_8)).single()
                                .flatMap(first -> {
                                    assertThat(first).isEqualTo("first\n");
                                    stdin.tryEmitNext("go\n".getBytes(UTF_8));
                                    stdin.tryEmitComplete();
                                    return Mono.zip(text(container.stdout()), container.exit());
                                }),
                        Container::release))
                .assertNext(result -> {
                    assertThat(result.getT1()).isEqualTo("after go\n");
                    assertThat(result.getT2().status()).isEqualTo(4);
                })
                .verifyComplete();
    }

    /**
     * Output subscribers were called on the io threads, which run every blocking step of the runtime: a host whose
     * subscribers blocked in {@code onNext} (a slow sink, a latch) held them all, and exec, stats, kill and release
     * of every other container hung. More subscribers than there are io threads block here; another container's
     * exec (its output read), stats, kill and release still end, and once they return nothing is left, no thread
     * of the stopped runtime either.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void outputSubscribersThatBlockHoldNoneOfTheRuntimesWork(String kind) throws Exception {
        int ioThreads = Scannable.from(resources.io()).scan(Scannable.Attr.CAPACITY);
        int blocking = ioThreads + 1;
        assertThat(Scannable.from(resources.output()).scan(Scannable.Attr.CAPACITY)).as("output threads")
                .isGreaterThan(blocking);
        Container other = runtime.run(request(kind, "/bin/sleep", "600")).block(TIMEOUT);
        List<Container> writers = new ArrayList<>();
        List<Disposable> readers = new ArrayList<>();
        CountDownLatch blocked = new CountDownLatch(blocking);
        CountDownLatch unblock = new CountDownLatch(1);
        try {
            for (int i = 0; i < blocking; i++) {
                writers.add(runtime.run(request(kind, "/bin/sh", "-c", "echo line; exec sleep 600")).block(TIMEOUT));
            }
            for (Container writer : writers) {
                readers.add(writer.stdout().subscribe(chunk -> {
                    blocked.countDown();
                    Latches.awaitUninterruptibly(unblock);
                }));
            }
            // Every io thread would be held by now: the rest of the subscribers block on threads of their own.
            awaitCount(blocked, blocking - ioThreads);

            StepVerifier.create(other.exec("e1", "/bin/echo", "from exec")
                            .flatMap(exec -> Mono.zip(text(exec.stdout()), exec.exit().map(ExitStatus::status))))
                    .assertNext(result -> {
                        assertThat(result.getT1()).isEqualTo("from exec\n");
                        assertThat(result.getT2()).isZero();
                    })
                    .expectComplete()
                    .verify(TIMEOUT);
            StepVerifier.create(other.stats()).expectNextCount(1).expectComplete().verify(TIMEOUT);
            StepVerifier.create(other.kill(9).then(other.exit().map(ExitStatus::status)))
                    .expectNext(137).expectComplete().verify(TIMEOUT);
            StepVerifier.create(other.release()).expectComplete().verify(TIMEOUT);
            assertThat(blocked.await(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)).as("every subscriber called at once")
                    .isTrue();
        } finally {
            unblock.countDown();
            Flux.fromIterable(writers).flatMap(Container::release).then(other.release()).block(TIMEOUT);
            readers.forEach(Disposable::dispose);
        }
        resources.close();
        try {
            assertThat(Thread.getAllStackTraces().keySet()).as("threads of the stopped runtime")
                    .noneMatch(thread -> thread.getName().startsWith(resources.threadPrefix()) && thread.isAlive());
        } finally {
            resources = new RuntimeResources("container-test-");
            runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
        }
    }

    /**
     * The runtime's own event exchange called its subscribers on the io threads too: more host subscribers blocked
     * in {@code onNext} than there are io threads (half on {@code runtime.events()}, half on one container's
     * {@code events()}) made the next run, exec, kill and release hang. They block here on the events of a run;
     * that run, an exec, a kill and a release still end, and a subscriber made meanwhile still sees the exit.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void eventSubscribersThatBlockHoldNoneOfTheRuntimesWork(String kind) throws Exception {
        int ioThreads = Scannable.from(resources.io()).scan(Scannable.Attr.CAPACITY);
        int blocking = ioThreads + 1;
        Container watched = runtime.run(request(kind, "/bin/sleep", "600")).block(TIMEOUT);
        List<Disposable> subscribers = new ArrayList<>();
        CountDownLatch blocked = new CountDownLatch(blocking);
        CountDownLatch unblock = new CountDownLatch(1);
        Container other = null;
        try {
            for (int i = 0; i < blocking; i++) {
                Flux<Envelope> events = i % 2 == 0 ? runtime.events() : watched.events();
                subscribers.add(events.subscribe(envelope -> {
                    blocked.countDown();
                    Latches.awaitUninterruptibly(unblock);
                }));
            }
            // Every one of them sees the watched container's exit.
            watched.kill(9).block(TIMEOUT);
            other = runtime.run(request(kind, "/bin/sleep", "600")).block(TIMEOUT);
            assertThat(blocked.await(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)).as("every subscriber called at once")
                    .isTrue();

            Container running = other;
            StepVerifier.create(running.events()
                            .filter(envelope -> envelope.event() instanceof TaskEvent.TaskExit exit
                                    && exit.id().equals(running.id()))
                            .next().map(envelope -> ((TaskEvent.TaskExit) envelope.event()).exitStatus())
                            .zipWith(running.exec("e1", "/bin/echo", "from exec")
                                    .flatMap(exec -> text(exec.stdout()))
                                    .flatMap(text -> running.kill(9).thenReturn(text)))
                            .map(result -> result.getT2() + result.getT1()))
                    .expectNext("from exec\n137")
                    .expectComplete()
                    .verify(TIMEOUT);
            StepVerifier.create(running.release()).expectComplete().verify(TIMEOUT);
            other = null;
        } finally {
            unblock.countDown();
            subscribers.forEach(Disposable::dispose);
            watched.release().block(TIMEOUT);
            if (other != null) {
                other.release().block(TIMEOUT);
            }
        }
    }

    /**
     * The session of a remote shim learnt that its init's exit went out from its own subscription to the exchange,
     * called on the output threads: with every one of them held by host subscribers, a shim killed after its init
     * exited was taken for one whose exit nobody had seen, and its cleanup published a second {@code /tasks/exit}
     * (137) after the shim's own (3). The exchange here is the default kind (in memory, delivering on the output
     * threads) and notes what goes into it as it goes in.
     */
    @Test
    void aDeadShimsInitExitThatWentOutWhileEveryOutputThreadWasHeldIsNotPublishedAgain() throws Exception {
        int outputThreads = Scannable.from(resources.output()).scan(Scannable.Attr.CAPACITY);
        NotingExchange exchange = new NotingExchange(new InMemoryEventExchange(resources.output(),
                Clock.systemUTC()));
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work"), exchange),
                resources);
        Container container = runtime.run(request("remote", "/bin/sh", "-c",
                "trap 'exit 3' TERM; echo ready; sleep 600 & wait")).block(TIMEOUT);
        List<Disposable> holders = new ArrayList<>();
        CountDownLatch held = new CountDownLatch(outputThreads);
        CountDownLatch unblock = new CountDownLatch(1);
        try {
            assertThat(text(container.stdout().take(1)).block(TIMEOUT)).isEqualTo("ready\n");
            ProcessHandle shim = shimDaemonOf(container);
            for (int i = 0; i < outputThreads; i++) {
                holders.add(exchange.subscribe(EventFilter.all()).subscribe(envelope -> {
                    held.countDown();
                    Latches.awaitUninterruptibly(unblock);
                }));
            }
            exchange.publish(NS, "/tasks/paused", new TaskEvent.TaskPaused("holder")).block(TIMEOUT);
            assertThat(held.await(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)).as("every output thread held").isTrue();

            container.kill(15).block(TIMEOUT);
            awaitEnds(exchange, container.id(), TaskEvent.TaskExit.class);
            shim.destroyForcibly();
            assertThat(Processes.awaitGone(shim.pid(), TIMEOUT)).isTrue();
            // The cleanup publishes its exit, if any, before its delete.
            awaitEnds(exchange, container.id(), TaskEvent.TaskDelete.class);

            assertThat(exchange.went().stream().filter(event -> event instanceof TaskEvent.TaskExit exit
                            && exit.id().equals(container.id()))
                    .map(event -> ((TaskEvent.TaskExit) event).exitStatus()))
                    .as("exits of the init that went into the exchange").containsExactly(3);
        } finally {
            unblock.countDown();
            holders.forEach(Disposable::dispose);
            container.release().block(TIMEOUT);
            exchange.delegate.dispose();
        }
    }

    /**
     * The opposite race: a dead shim's last Forward, its init's exit, read by the events server only after the
     * cleanup after that shim published an exit in its stead (the shim was stopped when its init was killed, so it
     * could not forward the exit before it died; the test sends the Forward it would have sent). It went in too,
     * after the task's delete: two exits of one init. The first to go in stands; the late one is not forwarded.
     */
    @Test
    void aDeadShimsExitForwardedAfterItsCleanupPublishedOneIsNotPublishedAgain() throws Exception {
        NotingExchange exchange = new NotingExchange(new InMemoryEventExchange(resources.output(),
                Clock.systemUTC()));
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work"), exchange),
                resources);
        Container container = runtime.run(request("remote", "/bin/sleep", "600")).block(TIMEOUT);
        ProcessHandle shim = shimDaemonOf(container);
        TtrpcConnection events = null;
        try {
            Processes.stop(shim.pid());
            Processes.run(temp, "kill", "-9", Integer.toString(container.pid()));
            shim.destroyForcibly();
            assertThat(Processes.awaitGone(shim.pid(), TIMEOUT)).isTrue();
            awaitEnds(exchange, container.id(), TaskEvent.TaskDelete.class);

            TaskEvent.TaskExit late = new TaskEvent.TaskExit(container.id(), container.id(), container.pid(), 137,
                    Instant.now());
            events = TtrpcClient.create().socket(temp.resolve("state").resolve(".shimmer").resolve("events.sock"))
                    .runOn(resources.loops()).connect().block(TIMEOUT);
            events.call("containerd.services.events.ttrpc.v1.Events", "Forward",
                    TaskEvents.forwardRequest(new Envelope(Instant.now(), NS, late.topic(), late)), Empty.parser(),
                    CallOptions.defaults()).block(TIMEOUT);

            assertThat(exchange.went().stream().filter(event -> switch (event) {
                case TaskEvent.TaskExit exit -> exit.containerId().equals(container.id());
                case TaskEvent.TaskDelete delete -> delete.containerId().equals(container.id());
                default -> false;
            }).map(event -> event.getClass().getSimpleName())).as("ends of the task that went into the exchange")
                    .containsExactly("TaskExit", "TaskDelete");

            // The task made again (by another process on the state root: no shim attaches here), its new init
            // given the old one's pid: its exit must go in. The dropped pid was kept until an attach in this
            // process, and so dropped the new init's exit too.
            TaskEvent.TaskCreate again = new TaskEvent.TaskCreate(container.id(), container.bundle().path()
                    .toString(), List.of(), container.pid());
            TaskEvent.TaskExit reused = new TaskEvent.TaskExit(container.id(), container.id(), container.pid(), 0,
                    Instant.now());
            for (TaskEvent event : List.<TaskEvent>of(again, reused)) {
                events.call("containerd.services.events.ttrpc.v1.Events", "Forward",
                        TaskEvents.forwardRequest(new Envelope(Instant.now(), NS, event.topic(), event)),
                        Empty.parser(), CallOptions.defaults()).block(TIMEOUT);
            }
            assertThat(exchange.went().stream().filter(event -> event instanceof TaskEvent.TaskExit exit
                            && exit.containerId().equals(container.id()))
                    .map(event -> ((TaskEvent.TaskExit) event).exitStatus()))
                    .as("the new init's exit, its pid the old one's").containsExactly(137, 0);
        } finally {
            if (events != null) {
                events.disposeLater().block(TIMEOUT);
            }
            shim.destroyForcibly();
            container.release().block(TIMEOUT);
            exchange.delegate.dispose();
        }
    }

    /**
     * Two runtimes of one process on one state root and one exchange (two extensions PF4J made over the plugin's
     * resources, which share the state root's default exchange, or a host passing its exchange to both): the first
     * serves the events socket, so the second's shims forward their exits through it. The second's sessions were
     * told of nothing (InitExits was one per runtime), and the cleanup after a shim killed once its init had
     * exited published a second {@code /tasks/exit} (137 after the shim's 3). Its own subscription used to see it.
     */
    @Test
    void aDeadShimsInitExitForwardedThroughAnotherRuntimesEventsServerIsNotPublishedAgain() throws Exception {
        NotingExchange exchange = new NotingExchange(new InMemoryEventExchange(resources.output(),
                Clock.systemUTC()));
        RuntimeConfig config = new RuntimeConfig(temp.resolve("state"), temp.resolve("work"), exchange);
        runtime = new LinuxRuntime(config, resources);
        Disposable serving = runtime.events().subscribe();
        LinuxRuntime second = new LinuxRuntime(config, resources);
        Container container = null;
        try {
            awaitSocket(temp.resolve("state").resolve(".shimmer").resolve("events.sock"));
            container = second.run(request("remote", "/bin/sh", "-c",
                    "trap 'exit 3' TERM; echo ready; sleep 600 & wait")).block(TIMEOUT);
            assertThat(text(container.stdout().take(1)).block(TIMEOUT)).isEqualTo("ready\n");
            ProcessHandle shim = shimDaemonOf(container);

            container.kill(15).block(TIMEOUT);
            awaitEnds(exchange, container.id(), TaskEvent.TaskExit.class);
            shim.destroyForcibly();
            assertThat(Processes.awaitGone(shim.pid(), TIMEOUT)).isTrue();
            awaitEnds(exchange, container.id(), TaskEvent.TaskDelete.class);

            String id = container.id();
            assertThat(exchange.went().stream().filter(event -> event instanceof TaskEvent.TaskExit exit
                            && exit.id().equals(id))
                    .map(event -> ((TaskEvent.TaskExit) event).exitStatus()))
                    .as("exits of the init that went into the exchange").containsExactly(3);
        } finally {
            if (container != null) {
                container.release().block(TIMEOUT);
            }
            serving.dispose();
            exchange.delegate.dispose();
        }
    }

    /** Waits until the socket file {@code socket} exists, at most {@link #TIMEOUT}. */
    private static void awaitSocket(Path socket) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!Files.exists(socket)) {
            assertThat(System.nanoTime()).as("%s bound in time", socket).isLessThan(deadline);
            Thread.sleep(10);
        }
    }

    /** Waits until an event of {@code type} of container {@code id} went into {@code exchange}. */
    private static void awaitEnds(NotingExchange exchange, String id, Class<? extends TaskEvent> type)
            throws InterruptedException {
        assertThat(exchange.awaitNoted(event -> type.isInstance(event) && switch (event) {
            case TaskEvent.TaskExit exit -> exit.containerId().equals(id);
            case TaskEvent.TaskDelete delete -> delete.containerId().equals(id);
            default -> false;
        }, TIMEOUT)).as("a %s of %s in time", type.getSimpleName(), id).isTrue();
    }

    /** An exchange that notes each event as it goes in, on the publisher's thread, before any subscriber sees it. */
    private static final class NotingExchange implements EventExchange {
        final InMemoryEventExchange delegate;
        private final List<Object> went = new CopyOnWriteArrayList<>();

        NotingExchange(InMemoryEventExchange delegate) {
            this.delegate = delegate;
        }

        List<Object> went() {
            return went;
        }

        /** Waits, at most {@code timeout}, until an event that {@code wanted} accepts went in; whether one did. */
        synchronized boolean awaitNoted(Predicate<Object> wanted, Duration timeout) throws InterruptedException {
            long deadline = System.nanoTime() + timeout.toNanos();
            while (went.stream().noneMatch(wanted)) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                TimeUnit.NANOSECONDS.timedWait(this, left);
            }
            return true;
        }

        private synchronized void note(Object event) {
            went.add(event);
            notifyAll();
        }

        @Override
        public Mono<Void> publish(String namespace, String topic, Object event) {
            return delegate.publish(namespace, topic, event).doOnSuccess(done -> note(event));
        }

        @Override
        public Mono<Void> forward(Envelope envelope) {
            return delegate.forward(envelope).doOnSuccess(done -> note(envelope.event()));
        }

        @Override
        public Flux<Envelope> subscribe(EventFilter filter, Backlog backlog) {
            return delegate.subscribe(filter, backlog);
        }
    }

    /** The daemon of a remote container's shim: the process whose command line names the container's id. */
    private static ProcessHandle shimDaemonOf(Container container) {
        return ProcessHandle.allProcesses()
                .filter(process -> process.info().commandLine().orElse("").contains("-id " + container.id()))
                .findFirst().orElseThrow();
    }

    /** Waits until {@code latch} counted down to {@code count} or less, at most {@link #TIMEOUT}. */
    private static void awaitCount(CountDownLatch latch, long count) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (latch.getCount() > count) {
            assertThat(System.nanoTime()).as("counted down to %d in time", count).isLessThan(deadline);
            Thread.sleep(10);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void execAndKillThroughTheHandle(String kind) {
        Container container = runtime.run(request(kind, "/bin/sleep", "30")).block(TIMEOUT);
        try {
            Spec.Process echo = Spec.Process.builder().args("/bin/echo", "from exec").build();
            for (int round = 0; round < 2; round++) {
                // The exec's exit comes once it was deleted: its id can be used again.
                StepVerifier.create(container.exec("e1", echo)
                                .flatMap(exec -> Mono.zip(text(exec.stdout()), exec.exit().map(ExitStatus::status))))
                        .assertNext(result -> {
                            assertThat(result.getT1()).isEqualTo("from exec\n");
                            assertThat(result.getT2()).isZero();
                        })
                        .verifyComplete();
            }
            ExecProcess sleeper = container.exec("e2", Spec.Process.builder().args("/bin/sleep", "30").build())
                    .block(TIMEOUT);
            assertThat(sleeper.pid()).isPositive();
            StepVerifier.create(sleeper.kill(9).then(sleeper.exit().map(ExitStatus::status)))
                    .expectNext(137).verifyComplete();

            // The container's init is its pid namespace's init: only a signal it handles, or SIGKILL, ends it.
            Mono<TaskEvent.TaskExit> initExit = container.events().map(Envelope::event)
                    .ofType(TaskEvent.TaskExit.class).filter(exit -> exit.pid() == container.pid()).next().cache();
            initExit.subscribe();
            StepVerifier.create(container.kill(9).then(container.exit().map(ExitStatus::status)))
                    .expectNext(137).verifyComplete();
            StepVerifier.create(initExit.map(TaskEvent.TaskExit::exitStatus)).expectNext(137).verifyComplete();
        } finally {
            container.release().block(TIMEOUT);
        }
    }

    /**
     * Like {@code ctr task exec}, an exec through the handle is the container's process with other arguments: a
     * container running as 1000:1000 without CAP_KILL gets execs as 1000 without it. A process built from nothing
     * is used as it is: root.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void anExecThroughTheHandleInheritsTheContainersUserAndCapabilities(String kind) {
        Spec spec = Spec.builder().args("/bin/sleep", "30").user(1000, 1000).dropCapability("CAP_KILL").build();
        Container container = runtime.run(RunRequest.of(NS, "u-" + UUID.randomUUID().toString().substring(0, 8),
                spec, rootfs).withShim(shim(kind)).withRuncOptions(runc)).block(TIMEOUT);
        try {
            assertThat(container.spec().process().uid()).isEqualTo(1000);
            StepVerifier.create(container.exec("uid", "/bin/id", "-u")
                            .flatMap(exec -> Mono.zip(text(exec.stdout()), exec.exit().map(ExitStatus::status))))
                    .assertNext(result -> {
                        assertThat(result.getT1()).isEqualTo("1000\n");
                        assertThat(result.getT2()).isZero();
                    })
                    .verifyComplete();
            StepVerifier.create(container.exec("caps", "/bin/cat", "/proc/self/status")
                            .flatMap(exec -> text(exec.stdout())))
                    .assertNext(status -> {
                        String line = status.lines().filter(l -> l.startsWith("CapEff:")).findFirst().orElseThrow();
                        long mask = Long.parseLong(line.substring("CapEff:".length()).strip(), 16);
                        assertThat(mask & (1L << Capabilities.bit("CAP_KILL"))).as("CAP_KILL in " + line).isZero();
                    })
                    .verifyComplete();
            StepVerifier.create(container.exec("root", Spec.Process.builder().args("/bin/id", "-u").build())
                            .flatMap(exec -> text(exec.stdout())))
                    .expectNext("0\n")
                    .verifyComplete();
        } finally {
            container.release().block(TIMEOUT);
        }
    }

    /**
     * The test (review #8): {@code usingWhen(runtime.run(req), work, Container::release)} 100 times, the work
     * succeeding, failing or never ending, the whole cancelled after a random delay, from at once to three times
     * a run and its release: so cancelled during the run, during the work or during the release, or not at all. One
     * in four runs through the remote shim. Each run of the id waits for the release before it (review #5), so none
     * gets {@code AlreadyExistsException}; at the end nothing is left.
     */
    @Test
    void usingWhenSucceedingFailingOrCancelledAtRandomPointsLeavesNothing() throws Exception {
        long seed = Long.getLong("shimmer.seed", System.nanoTime());
        Random random = new Random(seed);
        String id = "random";
        Map<String, Long> takes = new HashMap<>();
        for (String kind : List.of("local", "remote")) {
            // The first run of each kind opens what lives as long as the runtime (poll thread, loops, events server);
            // the second one says how long a run and its release take.
            runtime.run(named(kind, id, "/bin/sleep", "30")).flatMap(Container::release).block(TIMEOUT);
            long began = System.nanoTime();
            runtime.run(named(kind, id, "/bin/sleep", "30")).flatMap(Container::release).block(TIMEOUT);
            takes.put(kind, (System.nanoTime() - began) / 1_000_000);
        }
        Map<Integer, String> fdsBefore = Leaks.openFds();
        Map<String, Integer> outcomes = new HashMap<>();
        for (int i = 0; i < 100; i++) {
            String kind = i % 4 == 3 ? "remote" : "local";
            int work = random.nextInt(3);
            // A run waits for the release before it: up to three runs' time covers the run, the work and the release.
            long delay = (long) (random.nextDouble() * 3 * takes.get(kind));
            Mono<String> used = Mono.usingWhen(runtime.run(named(kind, id, "/bin/sleep", "30")),
                    container -> switch (work) {
                        case 0 -> Mono.delay(Duration.ofMillis(10)).thenReturn("done");
                        case 1 -> Mono.delay(Duration.ofMillis(10))
                                .then(Mono.<String>error(new IllegalStateException("work")));
                        default -> Mono.<String>never();
                    }, Container::release);
            String outcome;
            try {
                outcome = used.take(Duration.ofMillis(delay)).defaultIfEmpty("cancelled").block(TIMEOUT);
            } catch (IllegalStateException failed) {
                assertThat(failed).as("run %d (seed %d)", i, seed).hasMessage("work");
                outcome = "failed";
            }
            outcomes.merge(outcome, 1, Integer::sum);
        }
        // A last run waits for every release before it.
        runtime.run(named("local", id, "/bin/sleep", "30")).flatMap(Container::release).block(TIMEOUT);
        assertNothingLeft();
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5))).as("descriptors left open (seed %d)", seed)
                .isEmpty();
        System.out.printf("100 usingWhen runs at random (seed %d, a run and release %s ms): %s%n", seed, takes,
                outcomes);
    }

    /**
     * Review #5: a host cancels its {@code usingWhen} (the release goes on in the background) and runs the id again
     * at once, through another view of the same state root: the run waits for that release.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aRunRightAfterACancelledUsingWhenWaitsForItsReleaseInEveryView(String kind) {
        Sinks.One<Container> made = Sinks.one();
        StepVerifier.create(Mono.usingWhen(runtime.run(named(kind, "again", "/bin/sleep", "30")), container -> {
                    made.tryEmitValue(container);
                    return Mono.never();
                }, Container::release))
                .expectSubscription()
                .then(() -> made.asMono().block(TIMEOUT))
                .thenCancel()
                .verify(TIMEOUT);
        // usingWhen may start its release on another thread just after the cancel returned: start it here (the one
        // release is shared), left to run in the background as usingWhen's would be.
        made.asMono().block(TIMEOUT).release().subscribe();
        StepVerifier.create(Mono.usingWhen(runtime.withConfig(runtime.config())
                                .run(named(kind, "again", "/bin/sh", "-c", "exit 5")),
                        Container::exit, Container::release).map(ExitStatus::status))
                .expectNext(5)
                .verifyComplete();
    }

    /**
     * Review #4: a run cancelled while it waits for the release of its id's last container never starts its
     * process: the only start of the id after that release is the next run's.
     */
    @Test
    void aRunCancelledWhileQueuedStartsNothing() {
        Container first = runtime.run(named("local", "queued", "/bin/sleep", "30")).block(TIMEOUT);
        Sinks.Many<Integer> starts = Sinks.many().replay().all();
        Disposable watch = runtime.events().map(Envelope::event).ofType(TaskEvent.TaskStart.class)
                .filter(start -> start.containerId().equals("queued"))
                .subscribe(start -> starts.tryEmitNext(start.pid()));
        try {
            Mono<Void> released = first.release();
            released.subscribe();
            runtime.run(named("local", "queued", "/bin/sleep", "30")).subscribe().dispose();
            Container last = runtime.run(named("local", "queued", "/bin/sleep", "30")).block(TIMEOUT);
            StepVerifier.create(last.release()).verifyComplete();
            StepVerifier.create(starts.asFlux().takeUntil(pid -> pid == last.pid()))
                    .expectNext(last.pid())
                    .expectComplete()
                    .verify(TIMEOUT);
        } finally {
            watch.dispose();
        }
    }

    /**
     * Review #1: a SIGSTOPped remote shim keeps its connection and never answers: the release still ends, in
     * bounded time, killing the shim by force, and leaves nothing (no stopped process either).
     */
    @Test
    void releaseWithAStoppedShimEndsInBoundedTimeAndLeavesNothing() throws Exception {
        Container container = runtime.run(request("remote", "/bin/sleep", "30")).block(TIMEOUT);
        ProcessHandle shim = shimDaemonOf(container);
        try {
            Processes.stop(shim.pid());
            long began = System.nanoTime();
            StepVerifier.create(container.release()).expectComplete().verify(Duration.ofSeconds(60));
            Duration took = Duration.ofNanos(System.nanoTime() - began);
            assertThat(Processes.awaitGone(shim.pid(), TIMEOUT)).isTrue();
            System.out.printf("release with a stopped shim took %d ms%n", took.toMillis());
        } finally {
            // SIGKILL ends a stopped process too.
            shim.destroyForcibly();
        }
        StepVerifier.create(runtime.run(named("remote", container.id(), "/bin/true"))
                        .flatMap(again -> again.exit().then(again.release())))
                .verifyComplete();
    }

    @Test
    void aBadRequestNamesItsArgumentAndAMissingRootfsMakesNothing() {
        Spec spec = Spec.builder().args("/bin/true").build();
        assertThatThrownBy(() -> RunRequest.of(NS, "a/b", spec, rootfs))
                .isInstanceOf(InvalidIdentifierException.class).hasMessageContaining("a/b");
        assertThatThrownBy(() -> RunRequest.of(NS, "x", null, rootfs))
                .isInstanceOf(InvalidSpecException.class).hasMessageContaining("spec");
        assertThatThrownBy(() -> RunRequest.of(NS, "x", spec, (Path) null))
                .isInstanceOf(InvalidSpecException.class).hasMessageContaining("rootfs");
        assertThatThrownBy(() -> RunRequest.of(NS, "x", spec, rootfs).withOutputBuffer(-1))
                .isInstanceOf(InvalidSpecException.class).hasMessageContaining("outputBuffer -1");
        assertThatThrownBy(() -> RunRequest.of(NS, "x", spec, rootfs).withShim(ShimOpt.connect()))
                .isInstanceOf(InvalidSpecException.class).hasMessageContaining("shim");

        Spec noArgs = Spec.builder().build();
        StepVerifier.create(runtime.run(RunRequest.of(NS, "x", noArgs, rootfs)))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(InvalidSpecException.class)
                        .hasMessageContaining("process.args"))
                .verify(TIMEOUT);

        Path missing = temp.resolve("no-such-rootfs");
        StepVerifier.create(runtime.run(RunRequest.of(NS, "x", spec, missing)))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining(missing.toString()))
                .verify(TIMEOUT);
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void execsCancelledWhileTheReleaseRunsLeaveNoZombie(String kind) throws Exception {
        // A release that kills the container while runc sets an exec up makes runc give up: locally its stage-1
        // child, remotely the shim's runc itself, came to the JVM (a subreaper) and stayed a zombie for good.
        long seed = Long.getLong("shimmer.seed", System.nanoTime());
        Random random = new Random(seed);
        for (int round = 0; round < 8; round++) {
            Container container = runtime.run(request(kind, "/bin/sleep", "600")).block(TIMEOUT);
            List<Disposable> execs = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                execs.add(container.exec("x" + i, "/bin/sleep", "1").flatMap(ExecProcess::exit)
                        .subscribe(exit -> { }, error -> { }));
            }
            Thread.sleep(random.nextInt(120));
            Disposable release = container.release().subscribe(done -> { }, error -> { });
            for (Disposable exec : execs) {
                Thread.sleep(random.nextInt(20));
                exec.dispose();
            }
            container.release().block(TIMEOUT);
            release.dispose();
            assertThat(Zombies.awaitNone(Duration.ofSeconds(5))).as("seed %d, round %d", seed, round).isEmpty();
        }
    }

    /** No bundle, runc container, process, shim, mount or zombie of this test is left. */
    private void assertNothingLeft() throws Exception {
        Leftovers.assertNoneUnder(temp, NS, () -> {
            assertThat(Leaks.awaitNoProcessesOf(rootfs, rootfs.toString(), Duration.ofSeconds(5)))
                    .as("container processes").isEmpty();
            Processes.awaitNoneMentioning(temp.resolve("daemon.sock").toString(), Duration.ofSeconds(10));
        });
    }
}
