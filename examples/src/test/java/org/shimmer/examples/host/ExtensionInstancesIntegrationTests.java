package org.shimmer.examples.host;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.events.EventFilter;
import org.shimmer.runtime.events.InMemoryEventExchange;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.spec.Spec;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;

/**
 * PF4J makes a new extension instance at every {@code getExtensions}, so a host that takes {@code runtime()}
 * afresh (as it must after a reload, and as the demo does for each step) holds several: they must be one runtime.
 */
class ExtensionInstancesIntegrationTests {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "instances";

    @TempDir
    Path temp;

    private PluginHost host;
    private InMemoryEventExchange events;
    private RuntimeConfig config;
    private RuncOptions runc;
    private Path image;

    @BeforeEach
    void setUp() throws IOException {
        Path pluginsDir = Files.createDirectories(temp.resolve("plugins"));
        Files.copy(builtZip(), pluginsDir.resolve(builtZip().getFileName()));
        events = new InMemoryEventExchange();
        config = new RuntimeConfig(temp.resolve("state"), temp.resolve("work"), events);
        runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
        image = BusyboxRootfs.write(temp.resolve("image"));
        host = PluginHost.start(pluginsDir);
    }

    @AfterEach
    void tearDown() throws IOException {
        host.close();
        events.dispose();
        assertThat(StateRootCgroups.removeEmptyAndListLeft(temp.resolve("state"))).as("container cgroups").isEmpty();
    }

    /**
     * A remote run through one instance binds the state root's events server in this process; a local run through
     * another instance then forwarded its task events to that server, which published them into the host's
     * exchange a second time: the demo printed every event of its image run twice.
     */
    @Test
    void aLocalRunThroughAnotherInstanceAfterARemoteOnePublishesEachEventOnce() throws Exception {
        Map<String, AtomicInteger> seen = new ConcurrentHashMap<>();
        CountDownLatch laterDeleted = new CountDownLatch(1);
        Disposable counting = events.subscribe(EventFilter.all().withNamespace(NS)).subscribe(envelope -> {
            if (envelope.event() instanceof TaskEvent event) {
                String key = event.containerId() + " " + envelope.topic();
                seen.computeIfAbsent(key, k -> new AtomicInteger()).incrementAndGet();
                if (key.equals("later /tasks/delete")) {
                    laterDeleted.countDown();
                }
            }
        });
        try {
            run(host.runtime().withConfig(config), "remote", ShimOpt.remote(Path.of("containerd-shim-runc-v2"),
                    temp.resolve("daemon").toString(), null, false, null));
            run(host.runtime().withConfig(config), "local", ShimOpt.local());
            // One run more through a third instance, seen whole: a late duplicate of local's would have come by then.
            run(host.runtime().withConfig(config), "later", ShimOpt.local());
            assertThat(laterDeleted.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("later /tasks/delete seen")
                    .isTrue();
        } finally {
            counting.dispose();
        }

        for (String id : List.of("remote", "local", "later")) {
            for (String topic : List.of("/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete")) {
                assertThat(seen.get(id + " " + topic)).as(id + " " + topic).hasValue(1);
            }
        }
        HostLeftovers.assertNoneUnder(temp, NS);
    }

    private void run(RuntimePlugin runtime, String id, ShimOpt shim) {
        RunRequest request = RunRequest.of(NS, id, Spec.builder().args("/bin/true").build(), image)
                .withShim(shim).withRuncOptions(runc);
        ExitStatus exit = Mono.usingWhen(runtime.run(request), container -> container.exit(), Container::release)
                .block(TIMEOUT);
        assertThat(exit.status()).as(id).isZero();
    }

    private static Path builtZip() throws IOException {
        Path dir = Path.of(System.getProperty("shimmer.plugins.dir", "target/plugins"));
        try (Stream<Path> zips = Files.list(dir)) {
            return zips.filter(p -> p.getFileName().toString().endsWith(".zip")).findFirst()
                    .orElseThrow(() -> new IllegalStateException("no plugin zip in " + dir));
        }
    }
}
