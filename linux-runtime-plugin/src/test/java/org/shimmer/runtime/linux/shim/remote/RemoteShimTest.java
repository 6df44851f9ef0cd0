package org.shimmer.runtime.linux.shim.remote;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.withinPercentage;

import com.google.protobuf.Empty;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.ResourceExhaustedException;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.events.Backlog;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.EventFilter;
import org.shimmer.runtime.events.InMemoryEventExchange;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.poll.PollLoop;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.runc.Runc;
import org.shimmer.runtime.linux.shim.ShimContractTest;
import org.shimmer.runtime.linux.shim.StatsWorkload;
import org.shimmer.runtime.linux.shim.TaskEvents;
import org.shimmer.runtime.linux.shim.proto.StateRequest;
import org.shimmer.runtime.linux.shim.proto.StateResponse;
import org.shimmer.runtime.linux.stats.RuncStats;
import org.shimmer.runtime.linux.stats.StatsDecoder;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.NettyLeakDetection;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.linux.testing.RuncWrapper;
import org.shimmer.runtime.linux.testing.Zombies;
import org.shimmer.runtime.linux.ttrpc.CallOptions;
import org.shimmer.runtime.linux.ttrpc.TtrpcClient;
import org.shimmer.runtime.linux.ttrpc.TtrpcConnection;
import org.shimmer.runtime.shim.ContainerStats;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimException;
import org.shimmer.runtime.shim.ShimExit;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stats;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.spec.Spec;
import org.shimmer.runtime.shim.TaskState;
import reactor.core.Disposable;
import reactor.core.publisher.BaseSubscriber;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Schedulers;
import reactor.test.StepVerifier;
import reactor.util.retry.Retry;

/** The contract, and what only the remote shim does, against the real containerd-shim-runc-v2. */
class RemoteShimTest extends ShimContractTest {

    private static final Path SHIM = Path.of("containerd-shim-runc-v2");

    private final List<Integer> shimPids = new CopyOnWriteArrayList<>();
    private final List<Path> shimSockets = new CopyOnWriteArrayList<>();
    private final AtomicInteger exits = new AtomicInteger();
    private final CountDownLatch exitHandled = new CountDownLatch(1);

    @AfterEach
    void checkNoShimIsLeft() throws Exception {
        List<Integer> alive = new ArrayList<>();
        for (int pid : shimPids) {
            if (!Processes.awaitGone(pid, Duration.ofSeconds(10))) {
                alive.add(pid);
                // A failed test must not leave a shim (and its container) running on the machine.
                ProcessHandle.of(pid).ifPresent(shim -> {
                    shim.descendants().forEach(ProcessHandle::destroyForcibly);
                    shim.destroyForcibly();
                });
            }
        }
        assertThat(alive).as("shims still running after the test").isEmpty();
        for (Path socket : shimSockets) {
            assertThat(socket).as("shim socket left").doesNotExist();
        }
        assertThat(Zombies.awaitNone(Duration.ofSeconds(5))).as("zombie children of the JVM").isEmpty();
        assertThat(mountPoints()).as("mounts left").noneMatch(point -> point.startsWith(temp.toString()));
    }

    @Override
    protected String expectedStatsType() {
        return "io.containerd.cgroups.";
    }

    @Override
    protected ShimOpt otherKind() {
        return ShimOpt.local();
    }

    private ShimOpt remote() {
        return ShimOpt.remote(SHIM, temp.resolve("daemon.sock").toString(), null, false,
                (ShimExit exit) -> {
                    exits.incrementAndGet();
                    exitHandled.countDown();
                });
    }

    private ShimOpt connectAgain() {
        return ShimOpt.connect((ShimExit exit) -> {
            exits.incrementAndGet();
            exitHandled.countDown();
        });
    }

    @Override
    protected Mono<ShimClient> newShim(Bundle bundle) {
        return bundle.newShimClient(remote(), runc).doOnNext(client -> {
            shimPids.add(((RemoteShimClient) client).session().shimPid());
            try {
                shimSockets.add(Path.of(ShimRecord.read(bundle.workDir()).orElseThrow().socket()));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    /**
     * The runc shim writes each exec's process spec to a temporary file and removes it once runc exec returns: in
     * the bundle's work directory, where it goes with the bundle, not in /tmp, where a shim killed during the exec
     * (a forced delete) left it for good (six such files after one CI run).
     */
    @Test
    void theShimsTemporaryFileOfAnExecIsInTheBundlesWorkDirectoryAndGoneAfterIt() throws Exception {
        RuncWrapper wrapper = RuncWrapper.heldExec(temp.resolve("wrapper"));
        runc = runc.withBinaryName(wrapper.binary());
        Bundle bundle = bundle("/bin/sleep", "600");
        ShimClient shim = started(bundle);
        shim.exec("e1", "{\"args\":[\"/bin/sleep\",\"600\"],\"cwd\":\"/\"}".getBytes(UTF_8), Stdio.none())
                .block(TIMEOUT);
        var starting = shim.start("e1").toFuture();

        awaitTrue(() -> Files.exists(wrapper.marker()));
        List<String> args = List.of(Files.readString(wrapper.marker()).strip().split(" "));
        Path spec = Path.of(args.get(args.indexOf("--process") + 1));
        boolean written = Files.exists(spec);
        // Before anything is asserted: a wrapper still held would hold the exec, and the test's end, for 60 s.
        wrapper.release();
        assertThat(spec.getParent()).as("where the shim wrote the exec's spec").isEqualTo(bundle.workDir());
        assertThat(written).as("the spec was there while runc exec ran").isTrue();

        int execPid = starting.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        assertThat(spec).as("removed by the shim after runc exec").doesNotExist();
        shim.kill("e1", 9).block(TIMEOUT);
        assertThat(shim.awaitExit("e1").block(TIMEOUT).status()).isEqualTo(137);
        shim.delete("e1").block(TIMEOUT);
        stop(shim);
        assertThat(Processes.awaitGone(execPid, TIMEOUT)).as("the exec is gone").isTrue();
    }

    /**
     * A shim start cancelled at any moment, the daemon already forked included, leaves no daemon, socket, record,
     * descriptor or zombie: the start runs to its end and a client nobody took is shut down. It used to leave the
     * daemon running (and the bundle undeletable) when the cancel came between {@code shim start} and Connect.
     */
    @Test
    void aShimStartCancelledAtAnyMomentLeavesNoDaemon() throws Exception {
        long seed = Long.getLong("shimmer.seed", System.nanoTime());
        Random random = new Random(seed);
        // How long a start takes here, so that the cancels fall before, inside and after it; the first one also
        // binds the events server.
        shim(bundle("/bin/true")).shutdown().block(TIMEOUT);
        Bundle second = bundle("/bin/true");
        long began = System.nanoTime();
        ShimClient measured = shim(second);
        long startMs = Math.max(1, (System.nanoTime() - began) / 1_000_000);
        measured.shutdown().block(TIMEOUT);
        Map<Integer, String> fdsBefore = Leaks.openFds();
        int taken = 0;
        for (int i = 0; i < 12; i++) {
            Bundle bundle = bundle("/bin/true");
            long delay = (long) (random.nextDouble() * 1.5 * startMs);
            // A subscriber that keeps whatever reaches it, even after its cancel: a client handed on as the cancel
            // came is the caller's to shut down, as anything it received. (`take(Duration)` drops a value that
            // arrives once its time is up: that client, and its shim, were then nobody's.)
            AtomicReference<ShimClient> arrived = new AtomicReference<>();
            AtomicReference<Throwable> failed = new AtomicReference<>();
            BaseSubscriber<ShimClient> starting = new BaseSubscriber<>() {
                @Override
                protected void hookOnNext(ShimClient client) {
                    arrived.set(client);
                }

                @Override
                protected void hookOnError(Throwable error) {
                    // Only a start that failed before the cancel gets here (later errors are dropped): a failure.
                    failed.set(error);
                }
            };
            bundle.newShimClient(remote(), runc).subscribe(starting);
            // Cancelled from Reactor's timer thread, as take(Duration) did, racing the start's own threads.
            Mono.delay(Duration.ofMillis(delay)).doOnNext(tick -> starting.dispose()).block(TIMEOUT);
            AtomicBoolean shutDown = new AtomicBoolean();
            Mono<Void> shutDownArrived = Mono.defer(() -> {
                ShimClient client = arrived.get();
                return client != null && shutDown.compareAndSet(false, true) ? client.shutdown() : Mono.empty();
            });
            String where = "start " + i + " cancelled after " + delay + " ms (seed " + seed + ")";
            // The abandoned start goes on in the background: the bundle is in use until its client is shut down,
            // by the plugin if it never handed the client on, else here once it arrived.
            // Up to 15 s: the shim's shutdown took over 5 s once while another test JVM loaded both cores (CI).
            try {
                StepVerifier.create(shutDownArrived.then(bundle.delete())
                                .retryWhen(Retry.fixedDelay(300, Duration.ofMillis(50))
                                        .filter(FailedPreconditionException.class::isInstance)))
                        .as(where).verifyComplete();
            } catch (AssertionError inUse) {
                throw new AssertionError(where + ": " + inUse.getMessage() + "; a client arrived: "
                        + (arrived.get() != null) + whatHoldsOn(bundle), inUse);
            }
            assertThat(failed.get()).as("the start's error, %s", where).isNull();
            if (shutDown.get()) {
                taken++;
            }
            bundles.remove(bundle);
            Processes.awaitNoneMentioning("-id " + bundle.id() + " ", Duration.ofSeconds(10));
        }
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5)))
                .as("descriptors left open (seed %d)", seed).isEmpty();
        assertThat(Zombies.awaitNone(Duration.ofSeconds(5))).as("zombie children of the JVM").isEmpty();
        System.out.printf("12 shim starts cancelled at random (seed %d, a start %d ms): %d taken%n", seed, startMs,
                taken);
    }

    /**
     * The work root has room for the launch record but not for the shim's own ({@code shim.json}, written once
     * {@code shim start} printed the address): the start failed, and its shim daemon ran on, task-less and
     * unrecorded, until a forced delete. Now the start fails naming {@code shim.json}, the daemon is shut down
     * before the error arrives, no partial file stays, and the next start works once there is room.
     */
    @Test
    void aShimWhoseRecordDoesNotFitOnTheWorkRootIsShutDownAndTheStartNamesTheRecord() throws Exception {
        Path workRoot = Files.createDirectories(temp.resolve("full-work"));
        try (FullTmpfs disk = FullTmpfs.mount(workRoot)) {
            LinuxRuntime onFullDisk = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), workRoot), resources);
            Bundle bundle = busyboxBundle(onFullDisk, "full", "/bin/true");
            disk.fill();
            // One block and inode for launch.json; inodes but no block for shim.json.
            disk.free(1);
            disk.freeInodes(4);

            StepVerifier.create(bundle.newShimClient(remote(), runc))
                    .expectErrorSatisfies(e -> {
                        assertThat(e).isInstanceOf(ResourceExhaustedException.class)
                                .hasMessageStartingWith("start the shim of task " + NS + "/" + bundle.id() + ": ")
                                .hasMessageContaining(bundle.workDir().resolve("shim.json").toString());
                        assertThat(e.getMessage().toLowerCase()).contains("no space left on device");
                    })
                    .verify(TIMEOUT);

            assertThat(ProcessHandle.allProcesses()
                    .filter(process -> process.info().commandLine().orElse("").contains("-id " + bundle.id() + " "))
                    .map(ProcessHandle::pid).toList()).as("shim processes of the failed start").isEmpty();
            assertThat(workFiles(bundle)).as("work files")
                    .containsExactly(bundle.workDir(), bundle.workDir().resolve("launch.json"));
            disk.empty();
            ShimClient shim = shim(bundle);
            shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
            shim.start().block(TIMEOUT);
            assertThat(shim.awaitExit().block(TIMEOUT).status()).isZero();
            shim.delete().block(TIMEOUT);
            shim.shutdown().block(TIMEOUT);
            onFullDisk.delete(NS, bundle.id()).block(TIMEOUT);
        }
    }

    /**
     * For a failure: the bundle's shim processes, what each is doing, and where the runtime's threads working for
     * shims stand (a start or shutdown that never ends shows there).
     */
    private static String whatHoldsOn(Bundle bundle) {
        StringBuilder found = new StringBuilder();
        ProcessHandle.allProcesses()
                .filter(process -> process.info().commandLine().orElse("").contains("-id " + bundle.id() + " "))
                .forEach(process -> found.append("; shim pid ").append(process.pid()).append(' ')
                        .append(Processes.describe(process.pid())));
        Thread.getAllStackTraces().forEach((thread, stack) -> {
            boolean ours = Stream.of(stack).anyMatch(frame -> frame.getClassName().startsWith("org.shimmer.runtime"));
            if (thread.getName().startsWith("shim-test") && ours) {
                found.append("; thread ").append(thread.getName()).append(' ').append(thread.getState());
                Stream.of(stack).limit(12).forEach(frame -> found.append("\n    at ").append(frame));
            }
        });
        return found.toString();
    }

    /**
     * A start cancelled on a bundle whose shim already runs ({@code shim start} hands out that shim's address): the
     * client nobody took only detaches, and the shim, its task and its record stay. The abandoned client used to
     * shut the shim down: ignored while a task runs, after which its record was removed, so the running container
     * could no longer be reached by {@code connect()} (and a shim with no task yet died under its other client).
     */
    @Test
    void aStartCancelledOnABundleWhoseShimRunsOnlyDetaches() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient shim = started(bundle);
        int shimPid = ((RemoteShimClient) shim).session().shimPid();
        PollLoop loop = resources.pollLoop();
        int registrations = loop.registrations();

        // `shim start` held back, so that the cancel surely comes before it ends: quick when the shim runs, it
        // used to end between two polls of the wait below, and the test then cancelled a client already taken.
        Path slowShim = Files.writeString(temp.resolve("slow-shim"),
                "#!/bin/sh\nsleep 0.5\nexec " + SHIM + " \"$@\"\n");
        Files.setPosixFilePermissions(slowShim, PosixFilePermissions.fromString("rwx------"));
        ShimOpt slow = ShimOpt.remote(slowShim, temp.resolve("daemon.sock").toString(), null, false,
                exit -> exits.incrementAndGet());
        Disposable start = bundle.newShimClient(slow, runc).subscribe();
        // Its log read: the start is under way, and runs to its end whoever cancels.
        awaitTrue(() -> loop.registrations() > registrations);
        start.dispose();
        // Ended: its log no longer read.
        awaitTrue(() -> loop.registrations() == registrations);

        assertStillReachable(bundle, shim, shimPid);
    }

    /**
     * A second client of a shim that runs a task it does not know of (its start was handed the running shim's
     * address) asks it to shut down: the shim ignores that while its task runs, and the record that reaches it
     * stays. It was removed after the wait, and the running container could no longer be reached by connect().
     */
    @Test
    void aShutdownTheShimIgnoresKeepsItsRecord() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient shim = started(bundle);
        int shimPid = ((RemoteShimClient) shim).session().shimPid();
        ShimClient second = bundle.newShimClient(remote(), runc).block(TIMEOUT);
        assertThat(((RemoteShimClient) second).session().shimPid()).as("the same shim").isEqualTo(shimPid);

        second.shutdown().block(TIMEOUT);

        assertStillReachable(bundle, shim, shimPid);
    }

    /** The shim that ran {@code bundle}'s task still does, its record too: a new client reaches the running task. */
    private void assertStillReachable(Bundle bundle, ShimClient shim, int shimPid) throws IOException {
        assertThat(Processes.isRunning(shimPid)).as("the shim").isTrue();
        assertThat(ShimRecord.read(bundle.workDir())).as("its record").isPresent();
        shim.close().block(TIMEOUT);
        ShimClient again = bundle.newShimClient(connectAgain(), runc).block(TIMEOUT);
        assertThat(again.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.RUNNING);
        stop(again);
        assertThat(exits).hasValue(0);
    }

    /**
     * A reattach that finds the recorded shim dead reaps the init it left only if the JVM adopted it: the pid in
     * {@code init.pid} may since name any process, here one in another pid namespace whose parent is not us. It was
     * watched (its pidfd held, polled, for as long as it lived) once the parent check was dropped. Both when runc
     * still has the container (the cleanup reports its task) and when it has not (only an adopted init is reaped).
     */
    @ParameterizedTest(name = "runc has the container: {0}")
    @ValueSource(booleans = {true, false})
    void aDeadShimsStaleInitPidNamingAnotherContainersProcessIsNotWatched(boolean runcHasIt) throws Exception {
        Bundle bundle = bundle("/bin/true");
        // runc's directory of a create that died before its state.json: a task the cleanup accounts for.
        Path runcState = Path.of(runc.runtimeRoot(), NS, bundle.id());
        if (runcHasIt) {
            Files.createDirectories(runcState);
        }
        Process other = new ProcessBuilder("unshare", "--pid", "--fork", "sleep", "60")
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile())).start();
        int stranger = 0;
        try {
            Path children = Path.of("/proc", Long.toString(other.pid()), "task", Long.toString(other.pid()),
                    "children");
            awaitTrue(() -> {
                try {
                    return !Files.readString(children).isBlank();
                } catch (IOException gone) {
                    return false;
                }
            });
            stranger = Integer.parseInt(Files.readString(children).strip().split(" ")[0]);
            new ShimRecord(SHIM.toString(), temp.resolve("daemon.sock").toString(), false,
                    temp.resolve("gone.sock").toString()).write(bundle.workDir());
            Files.writeString(bundle.path().resolve("init.pid"), Integer.toString(stranger));

            StepVerifier.create(bundle.newShimClient(connectAgain(), runc))
                    .expectErrorSatisfies(RemoteShimTest::assertUnavailable)
                    .verify(TIMEOUT);

            assertThat(resources.exitMonitor().isRunning(stranger))
                    .as("pid %d of another pid namespace watched", stranger).isFalse();
            assertThat(Processes.isRunning(stranger)).as("that process").isTrue();
        } finally {
            // The sleep first: unshare, its parent, reaps it and exits (killed first, it would leave the sleep).
            if (stranger > 0) {
                Processes.run(null, "kill", "-9", Integer.toString(stranger));
            }
            if (!other.waitFor(10, TimeUnit.SECONDS)) {
                other.destroyForcibly();
            }
            Files.deleteIfExists(runcState);
        }
    }

    /**
     * A record left by a shim that deleted its task and then exited, as a shutdown whose caller gave up after the
     * shim took it leaves it: a reattach finds the shim gone and cleans up after it, but reports no second end of
     * the task. It published a synthetic /tasks/exit (137) and /tasks/delete for a task deleted long before.
     */
    @Test
    void aReattachToAShimGoneAfterItsTaskWasDeletedReportsNoSecondEnd() throws Exception {
        Bundle bundle = bundle("/bin/true");
        ShimClient shim = shim(bundle);
        EventRecorder recorder = new EventRecorder(shim.events());
        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isZero();
        shim.delete().block(TIMEOUT);
        recorder.awaitTopics("/tasks/exit", "/tasks/delete");
        Path record = bundle.workDir().resolve(ShimRecord.FILE);
        byte[] recorded = Files.readAllBytes(record);
        shim.shutdown().block(TIMEOUT);
        Files.write(record, recorded);
        int endsBefore = ends(recorder, bundle).size();

        StepVerifier.create(bundle.newShimClient(connectAgain(), runc))
                .expectErrorSatisfies(RemoteShimTest::assertUnavailable)
                .verify(TIMEOUT);

        // Published after the cleanup ended: once it arrives, anything the cleanup published has arrived too.
        resources.exchange(temp.resolve("state")).publish(NS, "/tasks/paused", new TaskEvent.TaskPaused(bundle.id())).block(TIMEOUT);
        recorder.awaitTopics("/tasks/paused");
        assertThat(ends(recorder, bundle)).as("exits and deletes of the task").hasSize(endsBefore);
        assertThat(ShimRecord.read(bundle.workDir())).as("the stale record, after the cleanup").isEmpty();
        recorder.close();
    }

    /**
     * A second shim of one bundle that connect() finds dead is cleaned up too. The first one's cleanup was kept under
     * the bundle and pid 0 (a reattach never learns a dead shim's pid), and the second got that result: no shim
     * delete, its record and socket left.
     */
    @Test
    void aSecondShimOfOneBundleThatConnectFindsDeadIsCleanedUpToo() throws Exception {
        Bundle bundle = bundle("/bin/true");
        for (int round = 1; round <= 2; round++) {
            ShimClient shim = shim(bundle);
            int shimPid = ((RemoteShimClient) shim).session().shimPid();
            Path socket = Path.of(ShimRecord.read(bundle.workDir()).orElseThrow().socket());
            shim.close().block(TIMEOUT);
            Processes.run(null, "kill", "-9", Integer.toString(shimPid));
            assertThat(Processes.awaitGone(shimPid, TIMEOUT)).as("round %d: shim %d", round, shimPid).isTrue();

            StepVerifier.create(bundle.newShimClient(connectAgain(), runc))
                    .expectErrorSatisfies(RemoteShimTest::assertUnavailable)
                    .verify(TIMEOUT);

            assertThat(ShimRecord.read(bundle.workDir())).as("round %d: the dead shim's record", round).isEmpty();
            assertThat(socket).as("round %d: its socket", round).doesNotExist();
        }
        assertThat(exits).hasValue(0);
    }

    /**
     * Two connect() calls that find one shim dead at the same time clean up after it once: one exit and one delete
     * of its task. Each such cleanup is keyed by which record it read, so the second shares the first one's even if
     * it comes when the first is done, while the next shim of the bundle (a new record) gets its own.
     */
    @Test
    void twoConnectsThatFindOneShimDeadCleanUpOnce() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient shim = shim(bundle);
        EventRecorder recorder = new EventRecorder(shim.events());
        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        int pid = shim.start().block(TIMEOUT);
        int shimPid = ((RemoteShimClient) shim).session().shimPid();
        shim.close().block(TIMEOUT);
        Processes.run(null, "kill", "-9", Integer.toString(shimPid));
        assertThat(Processes.awaitGone(shimPid, TIMEOUT)).as("shim %d", shimPid).isTrue();

        List<Throwable> failures = Flux.merge(
                        bundle.newShimClient(connectAgain(), runc).subscribeOn(Schedulers.parallel()).materialize(),
                        bundle.newShimClient(connectAgain(), runc).subscribeOn(Schedulers.parallel()).materialize())
                .filter(signal -> signal.isOnError()).map(signal -> signal.getThrowable())
                .collectList().block(TIMEOUT);

        // Both found it dead, or the second found no record any more: the first had cleaned up.
        assertThat(failures).hasSize(2).allSatisfy(error -> assertThat(error).satisfiesAnyOf(
                RemoteShimTest::assertUnavailable, absent -> assertThat(absent).isInstanceOf(NotFoundException.class)));
        assertThat(Processes.awaitGone(pid, TIMEOUT)).as("its container's init %d", pid).isTrue();
        resources.exchange(temp.resolve("state")).publish(NS, "/tasks/paused", new TaskEvent.TaskPaused(bundle.id())).block(TIMEOUT);
        recorder.awaitTopics("/tasks/paused");
        assertThat(ends(recorder, bundle)).as("exits and deletes of the task")
                .containsExactly("/tasks/exit", "/tasks/delete");
        assertThat(ShimRecord.read(bundle.workDir())).as("the dead shim's record").isEmpty();
        recorder.close();
    }

    private static List<String> ends(EventRecorder recorder, Bundle bundle) {
        return recorder.envelopes().stream()
                .filter(envelope -> switch (envelope.event()) {
                    case TaskEvent.TaskExit exit -> exit.containerId().equals(bundle.id());
                    case TaskEvent.TaskDelete delete -> delete.containerId().equals(bundle.id());
                    default -> false;
                })
                .map(Envelope::topic).toList();
    }

    /**
     * The two decoding paths agree on one container at one time: the remote shim's cgroup metrics protobuf, and
     * runc's own stats JSON for it, what the local shim decodes. Read in between two remote reads, runc's CPU time
     * lies between theirs; the limits, the pids and the tmpfs pages are the same; usage, which moves by a few
     * pages between reads, is within 10%.
     */
    @Test
    void typedStatsAgreeWithRuncsOwnForTheSameContainer() throws Exception {
        Bundle bundle = bundle(StatsWorkload.spec(Files.createDirectories(temp.resolve("specs"))));
        ShimClient shim = statsWorkload(bundle);
        Runc direct = new Runc(runc, NS, bundle.path(), resources.io());

        ContainerStats before = shim.stats().block(TIMEOUT);
        Stats json = direct.stats(bundle.id()).map(bytes -> new Stats(RuncStats.TYPE, bytes)).block(TIMEOUT);
        ContainerStats fromRunc = StatsDecoder.decode(json);
        ContainerStats after = shim.stats().block(TIMEOUT);

        assertThat(before.raw().typeUrl()).isNotEqualTo(fromRunc.raw().typeUrl());
        assertThat(fromRunc.memory().limitBytes()).isEqualTo(before.memory().limitBytes()).hasValue(
                StatsWorkload.MEMORY_LIMIT);
        assertThat(fromRunc.pids()).isEqualTo(before.pids());
        assertThat(fromRunc.memory().fileBytes()).isEqualTo(before.memory().fileBytes());
        assertThat((double) fromRunc.memory().usageBytes()).isCloseTo(before.memory().usageBytes(),
                withinPercentage(10));
        assertThat(fromRunc.cpu().usageNanos()).isBetween(before.cpu().usageNanos(), after.cpu().usageNanos());
        stop(shim);
    }

    /**
     * A client that connects to a task that exited, while the client that ran it is attached: the exit went
     * through this runtime's exchange once; reconciling published it a second time, to every subscriber.
     */
    @Test
    void connectingToAnExitedTaskAnotherClientHeardPublishesNoSecondExit() throws Exception {
        Bundle bundle = bundle("/bin/sh", "-c", "exit 3");
        ShimClient shim = shim(bundle);
        EventRecorder recorder = new EventRecorder(shim.events());
        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isEqualTo(3);
        recorder.awaitTopics("/tasks/exit");

        ShimClient other = bundle.newShimClient(connectAgain(), runc).block(TIMEOUT);
        assertThat(other.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.STOPPED);
        other.close().block(TIMEOUT);
        shim.delete().block(TIMEOUT);

        recorder.awaitTopics("/tasks/delete");
        assertThat(recorder.envelopes()).extracting(Envelope::topic)
                .containsExactly("/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete");
        recorder.close();
        shim.shutdown().block(TIMEOUT);
        assertThat(exits).hasValue(0);
        assertNoFifos(bundle);
    }

    /**
     * The shim's /tasks/create of an init forwarded after that init's exit: the real shim forwards each event at
     * once, but one whose Forward failed is retried a second or more later, from another goroutine, while the next
     * ones go on; a create refused once comes after the start and exit (the test sends the retry it would have
     * sent). It made the attached client forget the exit it heard, and a connect() to the stopped task then
     * published that exit a second time.
     */
    @Test
    void aCreateForwardedAgainAfterItsInitsExitPublishesNoSecondExit() throws Exception {
        Bundle bundle = bundle("/bin/sh", "-c", "exit 3");
        ShimClient shim = shim(bundle);
        EventRecorder recorder = new EventRecorder(shim.events());
        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        // The retry keeps the envelope, and so the stamp, of the Forward refused as the task was created.
        Instant refused = Instant.now();
        int pid = shim.state().block(TIMEOUT).pid();
        shim.start().block(TIMEOUT);
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isEqualTo(3);
        recorder.awaitTopics("/tasks/exit");

        TaskEvent.TaskCreate retried = new TaskEvent.TaskCreate(bundle.id(), bundle.path().toString(), List.of(),
                pid);
        TtrpcConnection events = TtrpcClient.create()
                .socket(temp.resolve("state").resolve(".shimmer").resolve("events.sock"))
                .runOn(resources.loops()).connect().block(TIMEOUT);
        try {
            events.call("containerd.services.events.ttrpc.v1.Events", "Forward",
                    TaskEvents.forwardRequest(new Envelope(refused, NS, retried.topic(), retried)),
                    Empty.parser(), CallOptions.defaults()).block(TIMEOUT);
        } finally {
            events.disposeLater().block(TIMEOUT);
        }

        ShimClient other = bundle.newShimClient(connectAgain(), runc).block(TIMEOUT);
        assertThat(other.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.STOPPED);
        other.close().block(TIMEOUT);
        shim.delete().block(TIMEOUT);

        recorder.awaitTopics("/tasks/delete");
        assertThat(ends(recorder, bundle)).as("exits and deletes of the task")
                .containsExactly("/tasks/exit", "/tasks/delete");
        recorder.close();
        shim.shutdown().block(TIMEOUT);
        assertThat(exits).hasValue(0);
        assertNoFifos(bundle);
    }

    /**
     * A connect() whose reconcile could not publish the exit nobody had heard (the host's exchange refused it once)
     * failed, but its client stayed attached, and was told the exit went in (InitExits is told before the publish):
     * the next connect() took the exit for heard by it and published none, so the exit never went in (and the
     * failed client's connection stayed open). A failed reconcile now lets its client go.
     */
    @Test
    void aConnectWhoseReconcileCouldNotPublishTheExitLeavesItForTheNextConnect() throws Exception {
        Bundle bundle = bundle("/bin/sh", "-c", "exit 3");
        ShimClient shim = shim(bundle);
        shim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isEqualTo(3);
        shim.close().block(TIMEOUT);
        // A view with an exchange of its own: the shim's exit went into the runtime's (the events server's).
        RefusingOnceExchange exchange = new RefusingOnceExchange(new InMemoryEventExchange(resources.output(),
                Clock.systemUTC()));
        Bundle loaded = runtime.withConfig(new RuntimeConfig(temp.resolve("state"), temp.resolve("work"), exchange))
                .load(NS, bundle.id()).block(TIMEOUT);
        try {
            StepVerifier.create(loaded.newShimClient(connectAgain(), runc))
                    .expectErrorMatches(error -> error.getMessage().endsWith("the host's bus is down"))
                    .verify(TIMEOUT);

            ShimClient again = loaded.newShimClient(connectAgain(), runc).block(TIMEOUT);
            assertThat(exchange.exits).as("exit statuses that went into the view's exchange").containsExactly(3);
            again.delete().block(TIMEOUT);
            again.shutdown().block(TIMEOUT);
        } finally {
            exchange.delegate.dispose();
        }
        assertThat(exits).hasValue(0);
        assertNoFifos(bundle);
    }

    /** A host's exchange that refuses the first exit published into it, and notes the exits it took. */
    private static final class RefusingOnceExchange implements EventExchange {
        final InMemoryEventExchange delegate;
        final List<Integer> exits = new CopyOnWriteArrayList<>();
        private final AtomicBoolean refused = new AtomicBoolean();

        RefusingOnceExchange(InMemoryEventExchange delegate) {
            this.delegate = delegate;
        }

        @Override
        public Mono<Void> publish(String namespace, String topic, Object event) {
            if (event instanceof TaskEvent.TaskExit exit) {
                if (refused.compareAndSet(false, true)) {
                    return Mono.error(new IllegalStateException("the host's bus is down"));
                }
                return delegate.publish(namespace, topic, event).doOnSuccess(done -> exits.add(exit.exitStatus()));
            }
            return delegate.publish(namespace, topic, event);
        }

        @Override
        public Mono<Void> forward(Envelope envelope) {
            return delegate.forward(envelope);
        }

        @Override
        public Flux<Envelope> subscribe(EventFilter filter, Backlog backlog) {
            return delegate.subscribe(filter, backlog);
        }
    }

    @Test
    void anExecsExitAwaitedThroughAnotherClientNamesItsPid() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "600");
        ShimClient maker = shim(bundle);
        maker.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        maker.start().block(TIMEOUT);
        int execPid = maker.exec("e1", Spec.Process.builder().args("/bin/sleep", "600").build(), Stdio.none())
                .then(maker.start("e1")).block(TIMEOUT);
        ShimClient other = bundle.newShimClient(ShimOpt.connect(), runc).block(TIMEOUT);

        other.kill("e1", 9).block(TIMEOUT);

        assertThat(other.awaitExit("e1").block(TIMEOUT)).satisfies(exit -> {
            assertThat(exit.pid()).as("the exec's pid, which the shim's Wait does not say").isEqualTo(execPid);
            assertThat(exit.status()).isEqualTo(137);
        });
        other.close().block(TIMEOUT);
        maker.kill(9, true).block(TIMEOUT);
        maker.awaitExit().block(TIMEOUT);
        maker.delete().block(TIMEOUT);
        maker.shutdown().block(TIMEOUT);
        assertNoFifos(bundle);
    }

    @Test
    void aTaskDeletedThroughAnotherClientIsForgottenByTheClientThatMadeIt() throws Exception {
        Bundle bundle = bundle("/bin/echo", "again");
        ShimClient maker = shim(bundle);
        maker.create(CreateOptions.of(Stdio.streams(null))).block(TIMEOUT);
        ShimClient other = bundle.newShimClient(ShimOpt.connect(), runc).block(TIMEOUT);

        other.delete().block(TIMEOUT);

        // The maker learns it from the shim, lets go of its streams, and can make the task again.
        StepVerifier.create(maker.delete()).expectError(NotFoundException.class).verify(TIMEOUT);
        ProcessIo io = maker.create(CreateOptions.of(Stdio.streams(null))).block(TIMEOUT);
        Mono<String> output = io.stdout().map(bytes -> new String(bytes, UTF_8)).reduce("", String::concat).cache();
        output.subscribe();
        maker.start().block(TIMEOUT);
        assertThat(maker.awaitExit().block(TIMEOUT).status()).isZero();
        maker.delete().block(TIMEOUT);
        assertThat(output.block(TIMEOUT)).isEqualTo("again\n");
        other.close().block(TIMEOUT);
        maker.shutdown().block(TIMEOUT);
        assertNoFifos(bundle);
    }

    @Test
    void killingTheShimRunsTheExitHandlerOnceAndLeavesNothing() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient shim = shim(bundle);
        EventRecorder recorder = new EventRecorder(shim.events());
        shim.create(CreateOptions.of(Stdio.streams(null))).block(TIMEOUT);
        int pid = shim.start().block(TIMEOUT);
        int shimPid = ((RemoteShimClient) shim).session().shimPid();
        Path socket = Path.of(ShimRecord.read(bundle.workDir()).orElseThrow().socket());

        new ProcessBuilder("kill", "-9", Integer.toString(shimPid)).start().waitFor();

        recorder.awaitTopics("/tasks/exit", "/tasks/delete");
        assertThat(exitHandled.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        List<TaskEvent.TaskExit> exitEvents = recorder.envelopes().stream().map(Envelope::event)
                .filter(TaskEvent.TaskExit.class::isInstance).map(TaskEvent.TaskExit.class::cast).toList();
        assertThat(exitEvents).singleElement().satisfies(exit -> {
            assertThat(exit.exitStatus()).isEqualTo(137);
            assertThat(exit.pid()).isEqualTo(pid);
        });
        assertThat(Processes.awaitGone(pid, TIMEOUT)).isTrue();
        assertThat(socket).doesNotExist();
        assertThat(exits).hasValue(1);
        assertNoFifos(bundle);
        StepVerifier.create(shim.state()).expectErrorSatisfies(e -> assertUnavailable(e)).verify(TIMEOUT);
        recorder.close();
    }

    /**
     * A shim killed between Create and Start: the start fails as UNAVAILABLE, the created init (runc's init waiting
     * on its exec FIFO) is killed and deleted, one exit and one delete are published, nothing is left.
     */
    @Test
    void aShimKilledBetweenCreateAndStartLeavesNothingAndTheStartSaysItExited() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient shim = shim(bundle);
        Map<Integer, String> fdsBefore = Leaks.openFds();
        EventRecorder recorder = new EventRecorder(shim.events());
        shim.create(CreateOptions.of(Stdio.streams(null))).block(TIMEOUT);
        int initPid = shim.state().block(TIMEOUT).pid();
        int shimPid = ((RemoteShimClient) shim).session().shimPid();

        Processes.run(null, "kill", "-9", Integer.toString(shimPid));

        StepVerifier.create(shim.start()).expectErrorSatisfies(RemoteShimTest::assertUnavailable).verify(TIMEOUT);
        recorder.awaitTopics("/tasks/exit", "/tasks/delete");
        assertThat(exitHandled.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        assertThat(recorder.envelopes().stream().map(Envelope::event)
                .filter(TaskEvent.TaskExit.class::isInstance).toList()).hasSize(1);
        assertThat(Processes.awaitGone(initPid, TIMEOUT)).as("the created init").isTrue();
        assertThat(exits).hasValue(1);
        recorder.close();
        assertNothingLeaks(bundle, fdsBefore);
    }

    /**
     * Calls in flight when the shim is killed (init's and an exec's Wait) fail as UNAVAILABLE saying the shim
     * exited. They said "detached from its shim; connect() again to reach it", and a connect() then found no shim.
     */
    @Test
    void callsInFlightWhenTheShimDiesSayItExitedNotThatTheyWereDetached() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient shim = started(bundle);
        shim.exec("e1", """
                {"args": ["/bin/sleep", "50"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}
                """.getBytes(UTF_8), Stdio.none()).block(TIMEOUT);
        shim.start("e1").block(TIMEOUT);
        List<Mono<ExitStatus>> waits = List.of(shim.awaitExit().cache(), shim.awaitExit("e1").cache());
        waits.forEach(wait -> wait.subscribe(exit -> {}, error -> {}));
        int shimPid = ((RemoteShimClient) shim).session().shimPid();

        Processes.run(null, "kill", "-9", Integer.toString(shimPid));

        for (Mono<ExitStatus> wait : waits) {
            StepVerifier.create(wait)
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOfSatisfying(ShimException.class,
                                    dead -> assertThat(dead.code()).isEqualTo(ErrorCode.UNAVAILABLE))
                            .hasMessageContaining("its shim (pid " + shimPid + ") exited")
                            .hasMessageNotContaining("connect() again"))
                    .verify(TIMEOUT);
        }
        assertThat(exitHandled.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        assertThat(exits).hasValue(1);
        assertNoFifos(bundle);
    }

    @Test
    void aShimWithTwoAttachedClientsIsCleanedUpOnceAndEachClientHearsOfItsDeath() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        CountDownLatch handlers = new CountDownLatch(2);
        AtomicInteger handled = new AtomicInteger();
        ShimClient started = bundle.newShimClient(ShimOpt.remote(SHIM, temp.resolve("daemon.sock").toString(), null,
                false, exit -> {
                    handled.incrementAndGet();
                    handlers.countDown();
                }), runc).block(TIMEOUT);
        EventRecorder recorder = new EventRecorder(started.events());
        started.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        int pid = started.start().block(TIMEOUT);
        ShimClient reattached = bundle.newShimClient(ShimOpt.connect(exit -> {
            handled.incrementAndGet();
            handlers.countDown();
        }), runc).block(TIMEOUT);
        int shimPid = ((RemoteShimClient) started).session().shimPid();
        shimPids.add(shimPid);
        shimSockets.add(Path.of(ShimRecord.read(bundle.workDir()).orElseThrow().socket()));

        new ProcessBuilder("kill", "-9", Integer.toString(shimPid)).start().waitFor();

        assertThat(handlers.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("both exit handlers").isTrue();
        recorder.awaitTopics("/tasks/exit", "/tasks/delete");
        assertThat(recorder.envelopes().stream().map(Envelope::topic)
                .filter(topic -> topic.equals("/tasks/exit") || topic.equals("/tasks/delete")))
                .as("one cleanup, one exit and one delete").containsExactly("/tasks/exit", "/tasks/delete");
        assertThat(Processes.awaitGone(pid, TIMEOUT)).isTrue();
        assertThat(handled).hasValue(2);
        for (ShimClient client : List.of(started, reattached)) {
            StepVerifier.create(client.state()).expectErrorSatisfies(e -> assertUnavailable(e)).verify(TIMEOUT);
        }
        assertNoFifos(bundle);
        recorder.close();
    }

    /** Creates and starts a ticker with streamed output; returns its pid once it ticked (its trap is set then). */
    private int startTicker(ShimClient shim) {
        ProcessIo io = shim.create(CreateOptions.of(Stdio.streams(null))).block(TIMEOUT);
        Mono<byte[]> firstTick = io.stdout().next().cache();
        firstTick.subscribe();
        int pid = shim.start().block(TIMEOUT);
        assertThat(new String(firstTick.block(TIMEOUT), UTF_8)).startsWith("tick");
        return pid;
    }

    @Test
    void aPluginStopWithOpenClientsLeavesContainersRunningAndConnectFindsThem() throws Exception {
        // One client from remote(), one from connect(); both open, the containers streaming, when the plugin stops.
        Bundle started = bundle(TICKER);
        Bundle reattached = bundle(TICKER);
        ShimClient fromRemote = shim(started);
        ShimClient first = shim(reattached);
        List<Bundle> both = List.of(started, reattached);
        List<Integer> pids = new ArrayList<>();
        for (ShimClient shim : List.of(fromRemote, first)) {
            pids.add(startTicker(shim));
        }
        first.close().block(TIMEOUT);
        ShimClient fromConnect = reattached.newShimClient(connectAgain(), runc).block(TIMEOUT);
        assertThat(fromConnect.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.RUNNING);
        List<Integer> shims = List.of(((RemoteShimClient) fromRemote).session().shimPid(),
                ((RemoteShimClient) fromConnect).session().shimPid());

        resources.close(); // what PF4J's stopPlugins() does; nobody closed the clients

        for (int i = 0; i < 2; i++) {
            assertThat(Processes.isRunning(pids.get(i))).as("container " + i + " after the stop").isTrue();
            assertThat(Processes.isRunning(shims.get(i))).as("shim " + i + " after the stop").isTrue();
            assertThat(ShimRecord.read(both.get(i).workDir())).isPresent();
            assertThat(temp.resolve("runc").resolve(NS).resolve(both.get(i).id())).isDirectory();
        }
        assertThat(exits).hasValue(0);
        StepVerifier.create(fromRemote.state()).expectError(UnavailableException.class).verify(TIMEOUT);
        StepVerifier.create(fromConnect.kill(9, true)).expectError(UnavailableException.class).verify(TIMEOUT);
        assertThat(Processes.isRunning(pids.get(1))).isTrue();

        // The new plugin reattaches to both; SIGTERM ends each with its own status.
        resources = new RuntimeResources("shim-test-2-");
        runtime = new LinuxRuntime(config(), resources);
        for (int i = 0; i < 2; i++) {
            Bundle loaded = runtime.load(NS, both.get(i).id()).block(TIMEOUT);
            ShimClient again = loaded.newShimClient(connectAgain(), runc).block(TIMEOUT);
            TaskState state = again.state().block(TIMEOUT);
            assertThat(state.status()).isEqualTo(TaskState.Status.RUNNING);
            assertThat(state.pid()).isEqualTo(pids.get(i));
            again.kill(15, false).block(TIMEOUT);
            assertThat(again.awaitExit().block(TIMEOUT).status()).isEqualTo(7);
            assertThat(again.delete().block(TIMEOUT).status()).isEqualTo(7);
            again.shutdown().block(TIMEOUT);
        }
        assertThat(exits).hasValue(0);
    }

    /**
     * An exec the shim made before a plugin stop is started by the next plugin: the stop closed our ends of its
     * output FIFOs, and the shim's blocking open of each for writing must still not wait for a reader.
     */
    @Test
    void anExecMadeBeforeAPluginStopIsStartedByTheNextOneAndRunsToItsExit() throws Exception {
        Bundle bundle = bundle("sleep", "600");
        ShimClient shim = started(bundle);
        shim.exec("made", Spec.Process.builder().args("/bin/sh", "-c", "echo out; echo err >&2; exit 3").build(),
                Stdio.streams(Flux.never())).block(TIMEOUT);

        resources.close();

        resources = new RuntimeResources("shim-test-2-");
        runtime = new LinuxRuntime(config(), resources);
        ShimClient again = runtime.load(NS, bundle.id()).block(TIMEOUT).newShimClient(connectAgain(), runc)
                .block(TIMEOUT);
        StepVerifier.create(again.start("made")).expectNextMatches(pid -> pid > 0).expectComplete()
                .verify(Duration.ofSeconds(10));
        assertThat(again.awaitExit("made").block(TIMEOUT).status()).isEqualTo(3);
        assertThat(again.delete("made").block(TIMEOUT).status()).isEqualTo(3);
        stop(again);
    }

    /**
     * Another client's create of the bundle is refused until the delete before it has released init's streams
     * (held here for their 5 s allowance by a subscriber that asks for nothing): that release removes init's FIFOs
     * by name, and took those of a create let in meanwhile (review).
     */
    @Test
    void anotherClientsCreateIsRefusedUntilTheDeleteReleasedInitsStreams() throws Exception {
        Bundle bundle = bundle("sh", "-c", "echo one");
        ShimClient first = shim(bundle);
        ProcessIo io = first.create(CreateOptions.of(Stdio.streams(null))).block(TIMEOUT);
        io.stdout().subscribe(new BaseSubscriber<byte[]>() {
            @Override
            protected void hookOnSubscribe(org.reactivestreams.Subscription subscription) {
                // Asks for nothing: the output never reaches its end.
            }
        });
        first.start().block(TIMEOUT);
        // Not awaitExit: it would spend the one allowance the output gets after the exit.
        awaitTrue(() -> first.state().block(TIMEOUT).status() == TaskState.Status.STOPPED);
        ShimClient second = bundle.newShimClient(connectAgain(), runc).block(TIMEOUT);
        Mono<ExitStatus> deleted = first.delete().cache();
        deleted.subscribe(exit -> { }, error -> { });
        awaitTrue(() -> {
            try {
                second.state().block(TIMEOUT);
                return false;
            } catch (NotFoundException gone) {
                return true;
            }
        });

        assertThat(deleted.toFuture()).as("the delete, releasing init's streams").isNotDone();
        StepVerifier.create(second.create(CreateOptions.of(Stdio.streams(null))))
                .expectError(AlreadyExistsException.class).verify(TIMEOUT);
        deleted.block(TIMEOUT);
        ProcessIo again = second.create(CreateOptions.of(Stdio.streams(null))).block(TIMEOUT);
        Path ioDir = bundle.workDir().resolve("io");
        assertThat(ioDir.resolve(bundle.id() + "-stdout")).exists();
        assertThat(ioDir.resolve(bundle.id() + "-stderr")).exists();
        Mono<String> output = subscribedText(again.stdout());
        second.start().block(TIMEOUT);
        assertThat(second.awaitExit().block(TIMEOUT).status()).isZero();
        assertThat(output.block(TIMEOUT)).isEqualTo("one\n");
        second.delete().block(TIMEOUT);
        second.shutdown().block(TIMEOUT);
        first.close().block(TIMEOUT);
    }

    @Test
    void closingOneClientLeavesTheShimRunningAndConnectReattaches() throws Exception {
        Bundle bundle = bundle(TICKER);
        ShimClient shim = shim(bundle);
        int pid = startTicker(shim);
        int shimPid = ((RemoteShimClient) shim).session().shimPid();

        shim.close().block(TIMEOUT);

        assertThat(Processes.isRunning(shimPid)).isTrue();
        assertThat(Processes.isRunning(pid)).isTrue();
        assertThat(ShimProcess.alive(bundle)).isTrue();
        StepVerifier.create(shim.state())
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(UnavailableException.class)
                        .hasMessageContaining("connect() again"))
                .verify(TIMEOUT);
        ShimClient again = bundle.newShimClient(connectAgain(), runc).block(TIMEOUT);
        assertThat(again.state().block(TIMEOUT).pid()).isEqualTo(pid);
        again.kill(15, false).block(TIMEOUT);
        assertThat(again.awaitExit().block(TIMEOUT).status()).isEqualTo(7);
        again.delete().block(TIMEOUT);
        again.shutdown().block(TIMEOUT);
        assertThat(exits).hasValue(0);
    }

    /**
     * shutdown() on a client that was closed fails at once as UNAVAILABLE, and the shim runs on with its record: it
     * waited 5 s and succeeded, while the Shutdown sent over the closed connection never reached the shim.
     */
    @Test
    void aShutdownOfAClosedClientFailsAndTheShimStaysReachable() throws Exception {
        Bundle bundle = bundle("/bin/true");
        ShimClient shim = shim(bundle);
        int shimPid = ((RemoteShimClient) shim).session().shimPid();
        shim.close().block(TIMEOUT);

        StepVerifier.create(shim.shutdown())
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(UnavailableException.class)
                        .hasMessageContaining("connect() again"))
                .verify(TIMEOUT);

        assertThat(Processes.isRunning(shimPid)).as("the shim").isTrue();
        assertThat(ShimRecord.read(bundle.workDir())).as("its record").isPresent();
        ShimClient again = bundle.newShimClient(connectAgain(), runc).block(TIMEOUT);
        again.shutdown().block(TIMEOUT);
        again.shutdown().block(TIMEOUT);
        assertThat(ShimRecord.read(bundle.workDir())).as("its record after the shutdown").isEmpty();
        assertThat(exits).hasValue(0);
    }

    /** A call on a shim that died: the task was cleaned up, and the shim is not there to answer. */
    private static void assertUnavailable(Throwable error) {
        assertThat(error).isInstanceOfSatisfying(ShimException.class,
                shim -> assertThat(shim.code()).isEqualTo(ErrorCode.UNAVAILABLE));
    }

    @Test
    void aCallToAStalledShimPastItsDeadlineIsDeadlineExceededAndTheShimAnswersOnceItRunsAgain() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient shim = started(bundle);
        ShimSession session = ((RemoteShimClient) shim).session();
        String shimPid = Integer.toString(session.shimPid());
        Mono<StateResponse> state = session.call("get state of", "State",
                StateRequest.newBuilder().setId(bundle.id()).build(), StateResponse.parser(),
                session.callOptions().withTimeout(Duration.ofMillis(300)));

        Processes.stop(Long.parseLong(shimPid));
        try {
            StepVerifier.create(state)
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOfSatisfying(ShimException.class,
                                    late -> assertThat(late.code()).isEqualTo(ErrorCode.DEADLINE_EXCEEDED))
                            .hasMessageStartingWith("get state of task " + NS + "/" + bundle.id() + ": "))
                    .verify(TIMEOUT);
        } finally {
            Processes.run(null, "kill", "-CONT", shimPid);
        }

        assertThat(shim.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.RUNNING);
        stop(shim);
        assertThat(exits).hasValue(0);
    }

    /**
     * shutdown() of a shim that never answers (stopped with SIGSTOP) ends within its deadline, detached: the
     * connection and the client's descriptors are let go, the shim and its record stay; once it runs again it takes
     * the Shutdown and exits, and nothing is left. The Shutdown call had no deadline: shutdown() waited for good.
     */
    @Test
    void aShutdownOfAShimThatNeverAnswersEndsDetachedWithinItsDeadline() throws Exception {
        whileTheShimIsStopped((shim, connection) ->
                StepVerifier.create(shim.shutdown()).expectComplete().verify(TIMEOUT));
    }

    @Test
    void aShutdownCancelledWhileItWaitsEndsAsADetach() throws Exception {
        whileTheShimIsStopped((shim, connection) -> {
            // Cancelled while it waits for the stopped shim's answer: the caller gave up, the session must not
            // hold its connection (and streams) until the plugin stops.
            Disposable waiting = shim.shutdown().subscribe();
            // Time for the Shutdown request to be written (no signal says so): the shim, once running again, must
            // take it and exit.
            Thread.sleep(300);
            waiting.dispose();
            StepVerifier.create(connection.onClose()).expectComplete().verify(Duration.ofSeconds(5));
        });
    }

    /** What a test does to the client of a shim stopped by SIGSTOP. */
    @FunctionalInterface
    private interface WhileStopped {
        void run(ShimClient shim, TtrpcConnection connection) throws Exception;
    }

    /**
     * Runs {@code action} on the client of a fresh shim while the shim is stopped; then the client must be detached
     * (its connection closed, the shim and its record left alone), and the shim, running again, must take the
     * Shutdown it was sent and exit, leaving nothing behind.
     */
    private void whileTheShimIsStopped(WhileStopped action) throws Exception {
        // The first shim also binds the events server, whose descriptors stay.
        shim(bundle("/bin/true")).shutdown().block(TIMEOUT);
        Map<Integer, String> fdsBefore = Leaks.openFds();
        Bundle bundle = bundle("/bin/true");
        ShimClient shim = shim(bundle);
        String shimPid = Integer.toString(((RemoteShimClient) shim).session().shimPid());
        TtrpcConnection connection = ((RemoteShimClient) shim).session().connection();

        Processes.stop(Long.parseLong(shimPid));
        try {
            action.run(shim, connection);
            assertThat(Processes.isRunning(Integer.parseInt(shimPid)))
                    .as("the stopped shim (%s)", Processes.describe(Integer.parseInt(shimPid))).isTrue();
            assertThat(ShimRecord.read(bundle.workDir())).as("its record").isPresent();
            // Its connection went (it held a descriptor for the shim's life); the exit monitor's watch of the
            // shim stays while the shim lives (it reaps the shim if the JVM adopts it). The descriptors are
            // checked once the shim is gone: while it lives, its own connection to our events server stays too.
            assertThat(connection.isDisposed()).as("the connection to the stopped shim").isTrue();
        } finally {
            // A shim gone while stopped (only SIGKILL ends one) failed the check above: resuming it would only
            // hide that failure behind kill's "No such process".
            if (Processes.isRunning(Integer.parseInt(shimPid))) {
                Processes.run(null, "kill", "-CONT", shimPid);
            }
        }

        // Running again, it takes the Shutdown it was sent and exits (it has no task); a reattach then finds it
        // gone and cleans up after it.
        Processes.awaitNoneMentioning("-id " + bundle.id() + " ", Duration.ofSeconds(10));
        StepVerifier.create(bundle.newShimClient(connectAgain(), runc))
                .expectErrorSatisfies(RemoteShimTest::assertUnavailable)
                .verify(TIMEOUT);
        assertThat(ShimRecord.read(bundle.workDir())).as("its record, once it exited").isEmpty();
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5))).as("descriptors left").isEmpty();
        assertThat(Zombies.awaitNone(Duration.ofSeconds(5))).as("zombie children of the JVM").isEmpty();
    }

    @Test
    void aConnectionLostWhileTheShimLivesOnlyDetaches() throws Exception {
        Bundle bundle = bundle(TICKER);
        ShimClient shim = shim(bundle);
        int pid = startTicker(shim);
        RemoteShimClient remote = (RemoteShimClient) shim;

        remote.session().connection().disposeLater().block(TIMEOUT);

        StepVerifier.create(shim.state()).expectError(UnavailableException.class).verify(TIMEOUT);
        StepVerifier.create(shim.kill(9, true)).expectError(UnavailableException.class).verify(TIMEOUT);
        assertThat(Processes.isRunning(remote.session().shimPid())).isTrue();
        assertThat(Processes.isRunning(pid)).isTrue();
        assertThat(ShimRecord.read(bundle.workDir())).isPresent();
        assertThat(exits).hasValue(0);
        ShimClient again = bundle.newShimClient(connectAgain(), runc).block(TIMEOUT);
        again.kill(15, false).block(TIMEOUT);
        assertThat(again.awaitExit().block(TIMEOUT).status()).isEqualTo(7);
        again.delete().block(TIMEOUT);
        again.shutdown().block(TIMEOUT);
        assertThat(exits).hasValue(0);
    }

    /**
     * Two state roots with one daemon address and a bundle of the same namespace and id: {@code shim start} of the
     * second hands out the first one's shim socket. The second runtime's client attached to the first's shim,
     * created its task there (its events went to the first runtime) and its shutdown ended the first's shim. Now
     * the start is refused naming the shim that serves the socket, that shim and its task are untouched, and the
     * second bundle keeps no record naming its socket. Its delete, forced or not, leaves that shim's socket: a
     * forced one removed it (the second bundle's launch record names the same socket), and the first runtime could
     * no longer reach its shim.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void aShimStartHandedAnotherStateRootsShimIsRefusedAndLeavesThatShimAlone(boolean forced) throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        ShimClient mine = started(bundle);
        int shimPid = ((RemoteShimClient) mine).session().shimPid();
        Path socket = Path.of(ShimRecord.read(bundle.workDir()).orElseThrow().socket());
        Map<Integer, String> fdsBefore = Leaks.openFds();
        RuntimeResources otherResources = new RuntimeResources("other-root-");
        try {
            LinuxRuntime other = new LinuxRuntime(new RuntimeConfig(temp.resolve("state2"), temp.resolve("work2")),
                    otherResources);
            Bundle theirs = other.create(NS, bundle.id(), BusyboxBundle.spec(Files.createDirectories(
                    temp.resolve("specs2")), "/bin/sleep", "60")).block(TIMEOUT);
            BusyboxBundle.writeRootfs(theirs.rootfs());

            StepVerifier.create(theirs.newShimClient(remote(), runc.withRuntimeRoot(temp.resolve("runc2")
                            .toString())))
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                            .hasMessageContaining(socket.toString())
                            .hasMessageContaining("process " + shimPid + ","))
                    .verify(TIMEOUT);

            assertThat(ShimRecord.read(theirs.workDir())).as("a record naming the other shim").isEmpty();
            if (forced) {
                other.forceDelete(NS, bundle.id()).block(TIMEOUT);
            } else {
                theirs.delete().block(TIMEOUT);
            }
            assertThat(theirs.path()).as("the second bundle").doesNotExist();
        } finally {
            otherResources.close();
        }
        assertThat(Processes.isRunning(shimPid)).as("the first root's shim").isTrue();
        assertThat(socket).as("its socket").exists();
        assertThat(mine.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.RUNNING);
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5))).as("descriptors left").isEmpty();
        stop(mine);
        assertThat(exits).hasValue(0);
    }

    /**
     * A record naming another bundle's shim socket (stale, or altered): connect() attached to that shim, whose
     * shutdown it could then send. Now it is refused naming the shim, and neither bundle is touched.
     */
    @Test
    void aConnectThroughARecordNamingAnotherBundlesShimTouchesNeither() throws Exception {
        Bundle bundle = bundle("/bin/sleep", "60");
        Bundle stale = bundle("/bin/true");
        ShimClient shim = started(bundle);
        int shimPid = ((RemoteShimClient) shim).session().shimPid();
        ShimRecord record = ShimRecord.read(bundle.workDir()).orElseThrow();
        record.write(stale.workDir());
        Map<Integer, String> fdsBefore = Leaks.openFds();

        StepVerifier.create(stale.newShimClient(connectAgain(), runc))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining("process " + shimPid + ","))
                .verify(TIMEOUT);

        assertThat(ShimRecord.read(stale.workDir())).as("the stale record, left as found").contains(record);
        assertThat(Path.of(record.socket())).as("the shim's socket").exists();
        assertThat(shim.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.RUNNING);
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5))).as("descriptors left").isEmpty();
        ShimRecord.remove(stale.workDir());
        stop(shim);
        assertThat(exits).hasValue(0);
    }

    /**
     * The cleanup after a shim that connect() finds dead removes its socket only when that is a shim's socket: a
     * record naming any other file (stale, or altered) made the cleanup delete that file.
     */
    @Test
    void aDeadShimsCleanupRemovesNoFileButAShimSocket() throws Exception {
        Bundle bundle = bundle("/bin/true");
        Path precious = Files.writeString(temp.resolve("precious.txt"), "kept");
        new ShimRecord(SHIM.toString(), temp.resolve("daemon.sock").toString(), false, precious.toString())
                .write(bundle.workDir());

        StepVerifier.create(bundle.newShimClient(connectAgain(), runc))
                .expectErrorSatisfies(RemoteShimTest::assertUnavailable)
                .verify(TIMEOUT);

        assertThat(precious).as("the file the record named").hasContent("kept");
        assertThat(ShimRecord.read(bundle.workDir())).as("the dead shim's record").isEmpty();
        assertThat(exits).hasValue(0);
    }

    /** Besides the first client: a client from connect(), and one of another runtime on this state root. */
    @Override
    protected void tryOtherCreators(Bundle bundle, CreateOptions options) throws Exception {
        ShimClient connected = bundle.newShimClient(connectAgain(), runc).block(TIMEOUT);
        StepVerifier.create(connected.create(options)).expectError(AlreadyExistsException.class).verify(TIMEOUT);
        connected.close().block(TIMEOUT);
        // Another runtime (another host on this state root) shares no claim with us: the shim's State must say no.
        RuntimeResources otherResources = new RuntimeResources("other-host-");
        try {
            Bundle seenByOther = new LinuxRuntime(config(), otherResources).load(NS, bundle.id()).block(TIMEOUT);
            ShimClient other = seenByOther.newShimClient(ShimOpt.connect(), runc).block(TIMEOUT);
            StepVerifier.create(other.create(options))
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(AlreadyExistsException.class)
                            .hasMessageContaining(bundle.id()).hasMessageContaining("RUNNING"))
                    .verify(TIMEOUT);
        } finally {
            otherResources.close();
        }
    }

    @Test
    void threeHundredRemoteLifecyclesAfterALocalOneLeaveNoZombie() throws Exception {
        // One local lifecycle makes the JVM a child subreaper: from then on every shim daemon is re-parented to it.
        Bundle local = bundle("/bin/true");
        ShimClient localShim = local.newShimClient(ShimOpt.local(), runc).block(TIMEOUT);
        localShim.create(CreateOptions.of(Stdio.none())).block(TIMEOUT);
        localShim.start().block(TIMEOUT);
        localShim.awaitExit().block(TIMEOUT);
        localShim.delete().block(TIMEOUT);
        localShim.shutdown().block(TIMEOUT);

        byte[] spec = BusyboxBundle.spec(Files.createDirectories(temp.resolve("specs")), "/bin/true");
        Path image = Files.createDirectories(temp.resolve("images").resolve("z"));
        BusyboxBundle.writeRootfs(image);
        AtomicInteger adopted = new AtomicInteger();
        Mono<Integer> hostChild = Mono.fromCallable(() -> new ProcessBuilder("sh", "-c", "sleep 0.5; exit 42")
                .start().waitFor()).subscribeOn(Schedulers.boundedElastic()).cache();
        // Four bundles, each running 75 lifecycles one after another: four at a time. Their ids are unique to the
        // run: the spec is raw (no cgroupsPath), so runc names each cgroup after its id.
        String run = UUID.randomUUID().toString().substring(0, 8);
        List<Integer> statuses = Flux.range(0, 4)
                .flatMap(lane -> runtime.create(NS, "z-" + lane + "-" + run, spec)
                        .flatMapMany(bundle -> Flux.range(0, 75).concatMap(i -> {
                            if (lane == 0 && i == 37) {
                                hostChild.subscribe();
                            }
                            return lifecycle(bundle, image, adopted);
                        }).concatWith(bundle.delete().then(Mono.empty()))), 4)
                .collectList()
                // A bound for a hang, not a speed claim: beside another test JVM on a loaded 2-core machine the
                // 300 lifecycles took longer than the 3 minutes once set here.
                .block(Duration.ofMinutes(10));

        assertThat(statuses).hasSize(300).containsOnly(0);
        assertThat(hostChild.block(TIMEOUT)).isEqualTo(42);
        assertThat(adopted).as("shims whose parent was the JVM (else this test proves nothing)").hasValue(300);
        assertThat(Zombies.awaitNone(Duration.ofSeconds(5))).as("zombie children of the JVM").isEmpty();
        assertThat(mountPoints()).as("mounts left").noneMatch(point -> point.startsWith(temp.toString()));
    }

    private Mono<Integer> lifecycle(Bundle bundle, Path image, AtomicInteger adopted) {
        return bundle.newShimClient(remote(), runc)
                .flatMap(shim -> {
                    int shimPid = ((RemoteShimClient) shim).session().shimPid();
                    shimPids.add(shimPid);
                    if (Zombies.parentOf(shimPid) == ProcessHandle.current().pid()) {
                        adopted.incrementAndGet();
                    }
                    return shim.create(new CreateOptions(List.of(Mount.readOnlyBind(image)), Stdio.none()))
                            .then(shim.start())
                            .then(shim.awaitExit())
                            .then(shim.delete())
                            .flatMap(exit -> shim.shutdown().thenReturn(exit.status()));
                });
    }
}
