package org.shimmer.benchmarks;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.IntFunction;
import org.shimmer.examples.host.PluginHost;
import org.shimmer.examples.host.StateRootCgroups;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.events.InMemoryEventExchange;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.spec.Spec;
import reactor.core.publisher.Mono;

/**
 * An image of many files through the plugin zip loaded by PF4J, as a host would run it: the time to import its
 * OCI layout and the disk its image root then takes, and the time from {@code run} to the container's first
 * output byte, from the image and from the same tree as a plain rootfs directory (both on the local shim, both
 * with a writable overlay root), each the median of several runs after warm-up. Nothing is timed but the import
 * and the run up to the first byte; each container is released before the next.
 *
 * <p>Usage: {@code ImageBenchmark RUNS WORK_DIR LAYOUT ROOTFS}: {@code LAYOUT} holds the image as an OCI layout,
 * {@code ROOTFS} the tree it was made from.
 */
public final class ImageBenchmark {

    private static final Duration TIMEOUT = Duration.ofMinutes(10);
    private static final int WARMUP = 2;
    private static final String NAMESPACE = "bench";

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: ImageBenchmark RUNS WORK_DIR LAYOUT ROOTFS");
            System.exit(2);
        }
        int runs = Integer.parseInt(args[0]);
        Path work = Path.of(args[1]);
        Path layout = Path.of(args[2]);
        Path rootfs = Path.of(args[3]);
        Path imageRoot = work.resolve("images");

        InMemoryEventExchange events = new InMemoryEventExchange();
        try (PluginHost host = PluginHost.start(Path.of("benchmarks/target/plugins"))) {
            RuntimePlugin runtime = host.runtime().withConfig(
                    new RuntimeConfig(work.resolve("state"), work.resolve("work"), events, imageRoot));
            RuncOptions runc = RuncOptions.defaults().withRuntimeRoot(work.resolve("runc").toString());

            long began = System.nanoTime();
            Image image = runtime.images().importLayout(layout, "bench:1").block(TIMEOUT);
            double importSeconds = (System.nanoTime() - began) / 1e9;
            long diskMb = megabytes(imageRoot);
            System.out.printf(Locale.ROOT, "import: %.2f s for %d layer(s), %d MB of files unpacked; image root"
                    + " %d MB on disk%n", importSeconds, image.layers().size(), image.size() >> 20, diskMb);

            Spec spec = Spec.builder().args("/bin/busybox", "echo", "ready").build();
            double imageMs = firstOutput(runtime, "image", runs,
                    i -> RunRequest.of(NAMESPACE, "i" + i, spec, image).withRuncOptions(runc));
            double dirMs = firstOutput(runtime, "directory", runs,
                    i -> RunRequest.of(NAMESPACE, "d" + i, spec, rootfs).withRuncOptions(runc));
            runtime.images().remove(image.name()).block(TIMEOUT);
            // Typed specs put the containers under /shimmer-<hash of this run's state root>/bench: runc leaves
            // those parents, a new tree in every hierarchy each run.
            List<Path> cgroupsLeft = StateRootCgroups.removeEmptyAndListLeft(work.resolve("state"));
            if (!cgroupsLeft.isEmpty()) {
                throw new IllegalStateException("container cgroups left: " + cgroupsLeft);
            }

            System.out.printf(Locale.ROOT, "RESULT import_s=%.2f disk_mb=%d image_run_ms=%.1f dir_run_ms=%.1f"
                    + " ratio=%.2f%n", importSeconds, diskMb, imageMs, dirMs, imageMs / dirMs);
        } finally {
            events.dispose();
            // A failed run too (rmdir only: a container's cgroup that is still there stays).
            try {
                StateRootCgroups.removeEmptyAndListLeft(work.resolve("state"));
            } catch (IOException | RuntimeException e) {
                System.err.println("could not remove the run's empty cgroups: " + e);
            }
        }
    }

    /**
     * The median time from {@code run} to the first stdout byte over {@code runs} runs, after warm-up; a run whose
     * container did not print {@code ready} or exit 0 fails the benchmark.
     */
    private static double firstOutput(RuntimePlugin runtime, String name, int runs, IntFunction<RunRequest> request) {
        List<Double> times = new ArrayList<>();
        for (int i = -WARMUP; i < runs; i++) {
            // Timed to the first byte, and counted only if the container printed "ready" and exited 0.
            long[] firstByte = {0};
            StringBuilder printed = new StringBuilder();
            long began = System.nanoTime();
            ExitStatus exit = Mono.usingWhen(runtime.run(request.apply(i + WARMUP)),
                    container -> container.stdout().doOnNext(chunk -> {
                        if (firstByte[0] == 0) {
                            firstByte[0] = System.nanoTime();
                        }
                        printed.append(new String(chunk, StandardCharsets.UTF_8));
                    }).then(container.exit()),
                    Container::release).block(TIMEOUT);
            if (exit.status() != 0 || !printed.toString().equals("ready\n")) {
                throw new IllegalStateException(name + ": a container exited " + exit.status() + " having printed \""
                        + printed + "\"");
            }
            double ms = (firstByte[0] - began) / 1e6;
            if (i >= 0) {
                times.add(ms);
            }
        }
        times.sort(Double::compare);
        double median = runs % 2 == 1 ? times.get(runs / 2) : (times.get(runs / 2 - 1) + times.get(runs / 2)) / 2;
        System.out.printf(Locale.ROOT, "%-10s run to first output: median %.1f ms over %d runs (min %.1f, max %.1f)"
                + "%n", name, median, runs, times.getFirst(), times.getLast());
        return median;
    }

    /** What {@code dir} takes on disk ({@code du}: blocks, hard links once). */
    private static long megabytes(Path dir) throws IOException, InterruptedException {
        Process du = new ProcessBuilder("du", "-s", "--block-size=1M", dir.toString()).start();
        String output = new String(du.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (du.waitFor() != 0) {
            throw new IllegalStateException("du " + dir + " failed: " + output);
        }
        return Long.parseLong(output.split("\\s+")[0]);
    }
}
