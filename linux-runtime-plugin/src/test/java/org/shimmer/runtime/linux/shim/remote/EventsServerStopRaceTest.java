package org.shimmer.runtime.linux.shim.remote;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.testing.LogCapture;
import org.shimmer.runtime.shim.ShimException;
import reactor.core.Disposable;
import reactor.core.publisher.Sinks;

/**
 * A plugin stop racing the first {@code events()}, which binds the state root's events server. The stop closed the
 * event loops under a bind still under way: the server bound on them could not be stopped (the io thread that
 * tried held the stop for its whole 10 s timeout, and warned), and a loop handed out after the stop had learned
 * its threads ran on after it.
 */
class EventsServerStopRaceTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final int ROUNDS = 30;

    @TempDir
    Path temp;

    @Test
    void aStopAtAnyMomentOfTheFirstBindEndsTheSubscriptionAndLeavesNoThreadNoSocketNoWarning() {
        long seed = Long.getLong("shimmer.seed", System.nanoTime());
        Random random = new Random(seed);
        Path stateRoot = temp.resolve("state");
        try (LogCapture log = LogCapture.start()) {
            for (int round = 0; round < ROUNDS; round++) {
                String prefix = "events-race-" + round + "-";
                RuntimeResources resources = new RuntimeResources(prefix);
                LinuxRuntime runtime = new LinuxRuntime(new RuntimeConfig(stateRoot, temp.resolve("work")),
                        resources);
                Sinks.One<Throwable> ended = Sinks.one();
                Disposable subscription = runtime.events().subscribe(envelope -> { }, ended::tryEmitValue,
                        () -> ended.tryEmitValue(new IllegalStateException("completed")));
                // From at once to past the bind (a few ms on a quiet machine).
                LockSupport.parkNanos(random.nextInt(3) == 0 ? 0 : random.nextLong(20_000_000));

                resources.close();

                String at = "seed " + seed + ", round " + round;
                Throwable end = ended.asMono().block(TIMEOUT);
                // Whether the stop met the bind or came after it: a completion told the subscriber nothing of it.
                assertThat(end).as(at).isInstanceOf(UnavailableException.class)
                        .hasMessageContaining("the runtime stopped");
                assertThat(Thread.getAllStackTraces().keySet()).as(at)
                        .filteredOn(thread -> thread.getName().startsWith(prefix)).filteredOn(Thread::isAlive)
                        .extracting(Thread::getName).isEmpty();
                assertThat(stateRoot.resolve(".shimmer").resolve("events.sock")).as(at).doesNotExist();
                subscription.dispose();
            }
            assertThat(log.text()).as("seed " + seed).doesNotContain("did not stop");
        }
    }

    /**
     * A host that stops the plugin from its error callback when {@code events()} fails (another runtime serves the
     * state root's events): the callback runs on the bind's own thread, and the stop waited for that bind to end,
     * which it could not before the callback returned, for the whole 10 s timeout.
     */
    @Test
    void aStopFromTheCallbackOfAFailedBindDoesNotWaitForThatBind() throws Exception {
        Path stateRoot = temp.resolve("state");
        RuntimeResources serving = new RuntimeResources("events-serving-");
        RuntimeResources refused = new RuntimeResources("events-refused-");
        try (LogCapture log = LogCapture.start()) {
            LinuxRuntime first = new LinuxRuntime(new RuntimeConfig(stateRoot, temp.resolve("work")), serving);
            Disposable served = first.events().subscribe();
            awaitSocket(stateRoot);
            LinuxRuntime second = new LinuxRuntime(new RuntimeConfig(stateRoot, temp.resolve("work")), refused);
            Sinks.One<Throwable> stopped = Sinks.one();
            second.events().subscribe(envelope -> { }, error -> {
                refused.close();
                stopped.tryEmitValue(error);
            });

            assertThat(stopped.asMono().block(TIMEOUT)).isInstanceOf(ShimException.class)
                    .hasMessageContaining("another process already receives the shim events");
            assertThat(log.text()).doesNotContain("did not end within").doesNotContain("did not stop");
            served.dispose();
        } finally {
            serving.close();
        }
    }

    /** A stop once the events server is bound removes the socket it bound. */
    @Test
    void aStopAfterTheBindRemovesTheSocketItBound() throws Exception {
        Path stateRoot = temp.resolve("state");
        RuntimeResources resources = new RuntimeResources("events-bound-");
        LinuxRuntime runtime = new LinuxRuntime(new RuntimeConfig(stateRoot, temp.resolve("work")), resources);
        Disposable subscription = runtime.events().subscribe();
        Path socket = awaitSocket(stateRoot);
        assertThat(socket).exists();
        resources.close();
        assertThat(socket).doesNotExist();
        subscription.dispose();
    }

    /** The state root's events socket, once it is there (or {@link #TIMEOUT} passed). */
    private static Path awaitSocket(Path stateRoot) throws InterruptedException {
        Path socket = stateRoot.resolve(".shimmer").resolve("events.sock");
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!Files.exists(socket) && System.nanoTime() - deadline < 0) {
            Thread.sleep(5);
        }
        return socket;
    }
}
