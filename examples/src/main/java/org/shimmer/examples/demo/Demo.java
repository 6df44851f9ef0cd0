package org.shimmer.examples.demo;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.LocalTime;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.shimmer.examples.host.BusyboxImage;
import org.shimmer.examples.host.BusyboxRootfs;
import org.shimmer.examples.host.PluginHost;
import org.shimmer.examples.host.StateRootCgroups;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.events.EventFilter;
import org.shimmer.runtime.events.InMemoryEventExchange;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import org.shimmer.runtime.spec.Spec;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;

/**
 * The demo: a host hot-loads the runtime plugin zip, runs a container through each shim, keeps a third one
 * running while a new version of the plugin replaces the old, and the new plugin reattaches to it and stops it.
 *
 * <p>Usage: {@code Demo PLUGIN_ZIP}. Everything it makes lives in a temporary directory it removes at the end.
 */
public final class Demo {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "demo";
    private static final DateTimeFormatter CLOCK = DateTimeFormatter.ofPattern("HH:mm:ss.SSS");

    private final long started = System.nanoTime();
    private final Path work;
    private final Path pluginsDir;
    private final Path zip;
    private final InMemoryEventExchange events = new InMemoryEventExchange();
    private final RuntimeConfig config;
    private final RuncOptions runc;
    private PluginHost host;

    private Demo(Path work, Path builtZip) throws IOException {
        this.work = work;
        this.pluginsDir = Files.createDirectories(work.resolve("plugins"));
        this.zip = pluginsDir.resolve(builtZip.getFileName());
        Files.copy(builtZip, zip);
        this.config = new RuntimeConfig(work.resolve("state"), work.resolve("work"), events);
        this.runc = RuncOptions.defaults().withRuntimeRoot(work.resolve("runc").toString());
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: Demo PLUGIN_ZIP");
            System.exit(2);
        }
        Path work = Files.createTempDirectory("shimmer-demo");
        try {
            new Demo(work, Path.of(args[0])).run();
        } finally {
            // A failed run too: once the state root is gone, nothing can name its cgroups any more.
            try {
                StateRootCgroups.removeEmptyAndListLeft(work.resolve("state"));
            } catch (IOException | RuntimeException e) {
                System.err.println("could not remove the demo's empty cgroups: " + e);
            }
            removeTree(work);
        }
    }

    private void run() throws Exception {
        say("Shimmer demo: a Java host hot-loads a container runtime plugin and runs containers through it.");
        Path image = BusyboxRootfs.write(work.resolve("image"));
        say("Prepared a busybox root filesystem at %s; no container below changes it.", image);

        host = PluginHost.start(pluginsDir);
        host.watch();
        host.started().forEach(plugin -> say("The host loaded plugin %s %s from %s.", plugin.getPluginId(),
                plugin.getDescriptor().getVersion(), zip.getFileName()));
        Disposable stream = events.subscribe(EventFilter.all().withNamespace(NS)).subscribe(envelope ->
                System.out.printf("             event %s %-20s %s%n",
                        CLOCK.format(LocalTime.ofInstant(envelope.timestamp(), ZoneId.systemDefault())),
                        envelope.topic(), envelope.event()));

        say("1. A container through the local shim (the plugin drives runc inside this JVM):");
        runToCompletion("hello-local", ShimOpt.local(), image,
                "/bin/sh", "-c", "echo hello from the local shim, I am $(hostname); exit 3");

        say("2. A container through the remote shim (containerd's containerd-shim-runc-v2, over ttRPC):");
        runToCompletion("hello-remote", remoteShim(), image,
                "/bin/sh", "-c", "echo hello from containerd-shim-runc-v2; ls /bin | wc -l");

        say("3. An OCI image built with umoci, imported into the image store and run (no daemon, no registry):");
        Image busybox = runtime().images().importLayout(BusyboxImage.layout(work.resolve("oci"))).block(TIMEOUT);
        say("   Imported %s (%s): %d layer, %d bytes unpacked.", busybox.name(), busybox.digest(),
                busybox.layers().size(), busybox.size());
        runToCompletion(RunRequest.of(NS, "hello-image", Spec.builder().hostname("hello-image").build(), busybox)
                .withRuncOptions(runc));
        runtime().images().remove(busybox.name()).block(TIMEOUT);
        say("   Its container released, the image was removed, layers and all.");

        say("4. A long-running container, 'ticker', through the remote shim; it writes to a log file.");
        Path tickerLog = work.resolve("ticker.log");
        Bundle ticker = runtime().create(NS, "ticker", Spec.builder().args("/bin/sh", "-c",
                "trap 'echo ticker: SIGTERM, bye; exit 0' TERM; while true; do echo tick; sleep 1; done").build())
                .block(TIMEOUT);
        ShimClient tickerShim = ticker.newShimClient(remoteShim(), runc).block(TIMEOUT);
        tickerShim.create(new CreateOptions(List.of(Mount.readOnlyBind(image)),
                Stdio.files(tickerLog, tickerLog))).block(TIMEOUT);
        int tickerPid = tickerShim.start().block(TIMEOUT);
        tickerShim.close().block(TIMEOUT);
        awaitTicks(tickerLog, 2);
        say("   The ticker runs as pid %d and ticks; the host let go of every object of the old plugin.", tickerPid);

        say("5. A new version of the plugin is dropped into the plugins directory.");
        Mono<PluginHost.Reload> reloaded = host.reloads().next().cache();
        reloaded.subscribe();
        Path staged = withVersion(zip, "0.1.1-demo");
        Files.move(staged, zip, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        PluginHost.Reload reload = reloaded.block(TIMEOUT);
        say("   The host unloaded %s %s and loaded %s in %d ms, without a restart.", reload.pluginId(),
                reload.oldVersion(), reload.newVersion(), reload.took().toMillis());
        say("   The ticker kept running through it: pid %d alive = %s.", tickerPid,
                ProcessHandle.of(tickerPid).map(ProcessHandle::isAlive).orElse(false));

        say("6. The new plugin reattaches to the ticker and stops it.");
        Bundle loaded = runtime().load(NS, "ticker").block(TIMEOUT);
        ShimClient again = loaded.newShimClient(ShimOpt.connect(), runc).block(TIMEOUT);
        TaskState state = again.state().block(TIMEOUT);
        say("   Reattached: the ticker is %s as pid %d. Sending SIGTERM.", state.status(), state.pid());
        again.kill(15, false).block(TIMEOUT);
        ExitStatus exit = again.awaitExit().block(TIMEOUT);
        again.delete().block(TIMEOUT);
        again.shutdown().block(TIMEOUT);
        loaded.delete().block(TIMEOUT);
        List<String> lines = Files.readAllLines(tickerLog);
        say("   The ticker exited with status %d; it ticked %d times across the reload; its last words: \"%s\".",
                exit.status(), lines.stream().filter("tick"::equals).count(), lines.getLast());

        stream.dispose();
        host.close();
        events.dispose();
        // The state root is a temporary one: the cgroups runc made above each container's are removed with it.
        List<Path> cgroupsLeft = StateRootCgroups.removeEmptyAndListLeft(work.resolve("state"));
        if (!cgroupsLeft.isEmpty()) {
            throw new IllegalStateException("container cgroups left: " + cgroupsLeft);
        }
        say("Done: two plugins loaded and unloaded, four containers run (one from an image), nothing left behind.");
    }

    private void runToCompletion(String id, ShimOpt opt, Path image, String... command) {
        Spec spec = Spec.builder().args(command).hostname(id).readonlyRootfs(true).build();
        runToCompletion(RunRequest.of(NS, id, spec, image).withShim(opt).withRuncOptions(runc));
    }

    private void runToCompletion(RunRequest request) {
        String id = request.id();
        long start = System.nanoTime();
        ExitStatus exit = Mono.usingWhen(runtime().run(request),
                container -> container.stdout().map(bytes -> new String(bytes, StandardCharsets.UTF_8))
                        .flatMapIterable(text -> text.lines().toList())
                        .doOnNext(line -> System.out.println("             | " + line))
                        .then(container.exit()),
                Container::release).block(TIMEOUT);
        say("   '%s' exited with status %d; run to release took %d ms.", id, exit.status(),
                Duration.ofNanos(System.nanoTime() - start).toMillis());
    }

    /** Waits (at most 10 s) until the ticker's log shows {@code ticks} ticks. */
    private static void awaitTicks(Path log, int ticks) throws IOException, InterruptedException {
        for (int i = 0; i < 100; i++) {
            if (Files.exists(log) && Files.readAllLines(log).stream().filter("tick"::equals).count() >= ticks) {
                return;
            }
            Thread.sleep(100);
        }
    }

    private RuntimePlugin runtime() {
        return host.runtime().withConfig(config);
    }

    private ShimOpt remoteShim() {
        return ShimOpt.remote(Path.of("containerd-shim-runc-v2"), work.resolve("daemon").toString(), null, false,
                exit -> say("   (the shim of %s died)", exit.id()));
    }

    /** A copy of the plugin zip that declares another version, ready to be renamed into the plugins dir. */
    private Path withVersion(Path original, String version) throws IOException {
        Path staged = work.resolve("staged.zip");
        Files.copy(original, staged, StandardCopyOption.REPLACE_EXISTING);
        try (FileSystem zipFs = FileSystems.newFileSystem(URI.create("jar:" + staged.toUri()), Map.of())) {
            Path properties = zipFs.getPath("plugin.properties");
            String text = Files.readString(properties).replaceAll("(?m)^plugin.version=.*$",
                    "plugin.version=" + version);
            Files.writeString(properties, text);
        }
        return staged;
    }

    private void say(String format, Object... args) {
        System.out.printf("[%6.2f s] %s%n", (System.nanoTime() - started) / 1e9, String.format(format, args));
    }

    private static void removeTree(Path root) throws IOException {
        try (Stream<Path> paths = Files.walk(root)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(path);
            }
        }
    }
}
