package org.shimmer.runtime.linux;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Latches;
import org.shimmer.runtime.linux.testing.OciLayouts;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.spec.Spec;
import reactor.core.Scannable;
import reactor.core.publisher.Mono;

/**
 * Work queued on the io scheduler behind busy threads when the plugin stop begins (a thread pool's shutdown still
 * runs what is queued): a run, an exec or an import that gets its turn then starts nothing the stop does not end,
 * and its caller hears that the runtime stopped.
 */
class QueuedAtStopTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String PREFIX = "queued-stop-test-";
    private static final byte[] SPEC = "{\"ociVersion\":\"1.0.2\"}".getBytes(UTF_8);

    @TempDir
    Path temp;

    /**
     * A run queued when the stop began starts no container, local or remote: no bundle, no runc container, no
     * shim daemon.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void aRunQueuedWhenTheStopBeganStartsNothingAndFailsUnavailable(String kind) throws Exception {
        RunRequest request = request(kind);
        RuntimeResources resources = new RuntimeResources(PREFIX);
        LinuxRuntime runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")),
                resources);
        Set<Long> childrenBefore = children();

        Throwable failed = queuedWhenTheStopBegins(resources, () -> runtime.run(request).toFuture());

        assertThat(failed).isInstanceOf(UnavailableException.class);
        assertThat(temp.resolve("state/ns/late")).as("the late run's bundle").doesNotExist();
        assertThat(temp.resolve("runc/late")).as("its runc container").doesNotExist();
        assertThat(temp.resolve("daemon.sock")).as("a shim daemon's socket").doesNotExist();
        assertThat(children()).as("processes started").isEqualTo(childrenBefore);
    }

    /**
     * An exec queued when the stop began starts no process in the container, local or remote; the container runs
     * on, as a stop leaves it (a detach), and a runtime started afterwards deletes it.
     */
    @ParameterizedTest
    @ValueSource(strings = {"local", "remote"})
    void anExecQueuedWhenTheStopBeganStartsNoProcess(String kind) throws Exception {
        RunRequest request = request(kind);
        RuntimeConfig config = new RuntimeConfig(temp.resolve("state"), temp.resolve("work"));
        RuntimeResources resources = new RuntimeResources(PREFIX);
        LinuxRuntime runtime = new LinuxRuntime(config, resources);
        Container container = runtime.run(request).block(TIMEOUT);
        try {
            Set<Long> before = descendants(container.pid());

            Throwable failed = queuedWhenTheStopBegins(resources,
                    () -> container.exec("late", "/bin/sleep", "600").toFuture());

            assertThat(failed).isInstanceOf(UnavailableException.class);
            assertThat(descendants(container.pid())).as("processes in the container").isEqualTo(before);
        } finally {
            try (RuntimeResources after = new RuntimeResources(PREFIX)) {
                new LinuxRuntime(config, after).forceDelete("ns", "late").block(TIMEOUT);
            }
        }
        assertThat(ProcessHandle.of(container.pid())).as("the container's init once deleted").isEmpty();
    }

    private static Set<Long> descendants(long pid) {
        return ProcessHandle.of(pid).orElseThrow().descendants().map(ProcessHandle::pid)
                .collect(Collectors.toSet());
    }

    /** An import queued when the stop began writes no image and leaves no scratch. */
    @Test
    void anImageImportQueuedWhenTheStopBeganWritesNothing() throws Exception {
        RuntimeConfig config = new RuntimeConfig(temp.resolve("state"), temp.resolve("work"));
        imported(config, "app", "x");
        Map<String, String> before = fingerprint(config.imageRoot());
        Path other = OciLayouts.layout().tagged(OciLayouts.image().layer(OciLayouts.tar("y", "y")), "v2")
                .writeDirectory(temp.resolve("other"));

        RuntimeResources resources = new RuntimeResources(PREFIX);
        LinuxRuntime runtime = new LinuxRuntime(config, resources);
        Throwable failed = queuedWhenTheStopBegins(resources, () -> runtime.images().importLayout(other).toFuture());

        assertThat(failed).isInstanceOf(UnavailableException.class);
        assertThat(fingerprint(config.imageRoot())).as("the store after a queued import").isEqualTo(before);
    }

    /** Imports a one-layer image into the store of {@code config} on a runtime of its own; returns its name. */
    private String imported(RuntimeConfig config, String name, String text) throws Exception {
        Path layout = OciLayouts.layout().tagged(OciLayouts.image().layer(OciLayouts.tar(name, text)), "v1")
                .writeDirectory(temp.resolve(name));
        try (RuntimeResources resources = new RuntimeResources(PREFIX)) {
            return new LinuxRuntime(config, resources).images().importLayout(layout).block(TIMEOUT).name();
        }
    }

    private static Map<String, String> fingerprint(Path root) throws IOException {
        Map<String, String> entries = new TreeMap<>();
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path path : (Iterable<Path>) walk::iterator) {
                entries.put(root.relativize(path).toString(),
                        Files.isRegularFile(path, LinkOption.NOFOLLOW_LINKS) ? Long.toString(Files.size(path)) : "");
            }
        }
        return entries;
    }

    /** A run of ns/late, {@code sleep 600} in busybox, on a shim of {@code kind}. */
    private RunRequest request(String kind) throws IOException {
        Path rootfs = Files.createDirectories(temp.resolve("rootfs"));
        BusyboxBundle.writeRootfs(rootfs);
        ShimOpt shim = kind.equals("local") ? ShimOpt.local()
                : ShimOpt.remote(Path.of("containerd-shim-runc-v2"), temp.resolve("daemon.sock").toString(), null,
                        false, null);
        return RunRequest.of("ns", "late", Spec.builder().args("/bin/sleep", "600").build(), rootfs)
                .withShim(shim)
                .withRuncOptions(RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString()));
    }

    private static Set<Long> children() {
        return ProcessHandle.current().descendants().map(ProcessHandle::pid).collect(Collectors.toSet());
    }

    /**
     * Holds every io thread with a task, starts {@code operation} (whose first io task then waits in a queue),
     * closes the resources on another thread and lets the held tasks end once the close began. Returns what the
     * operation failed with, or fails if it succeeded; no thread of the runtime is left.
     */
    private static Throwable queuedWhenTheStopBegins(RuntimeResources resources,
            Supplier<CompletableFuture<?>> operation) throws Exception {
        int threads = Scannable.from(resources.io()).scanOrDefault(Scannable.Attr.CAPACITY, 0);
        assertThat(threads).as("io threads").isPositive();
        CountDownLatch held = new CountDownLatch(threads);
        CountDownLatch release = new CountDownLatch(1);
        for (int i = 0; i < threads; i++) {
            Mono.fromRunnable(() -> {
                held.countDown();
                Latches.awaitUninterruptibly(release);
            }).subscribeOn(resources.io()).subscribe();
        }
        assertThat(held.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("every io thread held").isTrue();
        CompletableFuture<?> queued = operation.get();
        Thread closing = Thread.ofPlatform().start(resources::close);
        while (!resources.isClosed()) {
            LockSupport.parkNanos(1_000_000);
        }
        release.countDown();
        closing.join(TIMEOUT);
        assertThat(closing.isAlive()).as("the close still running").isFalse();
        assertThat(Thread.getAllStackTraces().keySet()).as("threads of the stopped runtime")
                .noneMatch(thread -> thread.getName().startsWith(PREFIX));
        try {
            queued.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            throw new AssertionError("the operation queued when the stop began succeeded");
        } catch (ExecutionException e) {
            return e.getCause();
        }
    }
}
