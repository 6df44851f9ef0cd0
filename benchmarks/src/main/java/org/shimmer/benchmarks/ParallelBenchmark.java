package org.shimmer.benchmarks;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.IntFunction;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * N containers started at once, each a full lifecycle of {@code sh -c 'echo; sleep 0.2'}, four ways in one run:
 * N parallel {@code runc run}; the plugin's local shim; its remote shim ({@code containerd-shim-runc-v2}); a
 * private containerd with N parallel {@code ctr run --rm}. The figure is the wall time from the first launch to the
 * last delete; every container must have printed its empty line and exited 0, or the run fails.
 *
 * <p>Usage: {@code ParallelBenchmark N WORK_DIR ROOTFS RUNC_SPEC CONTAINERD_SOCKET}: {@code RUNC_SPEC} is a
 * config.json running {@code /bin/true} with {@code root.path} = ROOTFS; its args are replaced here.
 */
public final class ParallelBenchmark {

    private static final Duration TIMEOUT = Duration.ofMinutes(5);
    /**
     * How many run at once in the warm-up round before each measured one (-Dshimmer.bench.warmup, as the sequential
     * benchmark's): a small round leaves the JIT compiling during the measured burst, on the same two cores.
     */
    private static final int WARMUP = Integer.getInteger("shimmer.bench.warmup", 4);
    /**
     * How many warm-up bursts of each way (-Dshimmer.bench.warmupRounds): the JIT went on compiling the remote
     * path through five bursts of 100 (its compiler threads' CPU is printed with each burst).
     */
    private static final int WARMUP_ROUNDS = Integer.getInteger("shimmer.bench.warmupRounds", 1);
    /** How many measured rounds of each way, interleaved (-Dshimmer.bench.rounds); the figure is their median. */
    private static final int ROUNDS = Integer.getInteger("shimmer.bench.rounds", 3);
    /** Runs only the way whose name begins with this (-Dshimmer.bench.only=remote), for a diagnosis. */
    private static final String ONLY = System.getProperty("shimmer.bench.only");
    private static final String NAMESPACE = "parallel";
    private static final String[] COMMAND = {"/bin/sh", "-c", "echo; sleep 0.2"};
    private static final String EXPECTED = "\n";

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: ParallelBenchmark N WORK_DIR ROOTFS RUNC_SPEC CONTAINERD_SOCKET");
            System.exit(2);
        }
        int n = Integer.parseInt(args[0]);
        Path work = Path.of(args[1]);
        Path rootfs = Path.of(args[2]);
        String shSpec = new String(Files.readAllBytes(Path.of(args[3])), StandardCharsets.UTF_8)
                .replace("\"/bin/true\"", "\"/bin/sh\", \"-c\", \"echo; sleep 0.2\"");
        if (!shSpec.contains("echo; sleep")) {
            throw new IllegalArgumentException("no /bin/true in " + args[3]);
        }
        byte[] runcSpec = shSpec.getBytes(StandardCharsets.UTF_8);
        byte[] bundleSpec = shSpec.replace("\"path\": \"" + rootfs + "\"", "\"path\": \"rootfs\"")
                .getBytes(StandardCharsets.UTF_8);
        String containerd = args[4];

        double runc;
        double local;
        double remote;
        double ctr;
        try (BenchRuntime plugin = new BenchRuntime(work)) {
            RuntimePlugin runtime = plugin.runtime();
            RuncOptions options = plugin.runc();
            ShimOpt shim = plugin.remoteShim();
            Way runcWay = new Way("runc run", (count, prefix) -> round("runc run", count, prefix,
                    id -> runcRun(work, runcSpec, id),
                    id -> BenchProcesses.runQuietly(List.of("runc", "--root", work.resolve("runc-root").toString(),
                            "delete", "-f", id))));
            Way localWay = new Way("local shim", (count, prefix) -> pluginRound(count, runtime,
                    id -> pluginLifecycle(runtime, ShimOpt.local(), options, bundleSpec, rootfs, id), "l" + prefix));
            Way remoteWay = new Way("remote shim", (count, prefix) -> pluginRound(count, runtime,
                    id -> pluginLifecycle(runtime, shim, options, bundleSpec, rootfs, id), "p" + prefix));
            Way ctrWay = new Way("containerd + ctr run --rm", (count, prefix) -> round("containerd + ctr run --rm",
                    count, prefix,
                    id -> external(ctrRun(containerd, rootfs, id)), id -> {
                        BenchProcesses.runQuietly(ctr(containerd, "task", "rm", "-f", id));
                        BenchProcesses.runQuietly(ctr(containerd, "container", "rm", id));
                    }));
            List<Way> ways = List.of(runcWay, localWay, remoteWay, ctrWay);
            if (ONLY != null) {
                // A diagnosis of one way (under a profiler, say): its bursts only, and no RESULT line.
                Way only = ways.stream().filter(way -> way.name.startsWith(ONLY)).findFirst()
                        .orElseThrow(() -> new IllegalArgumentException("no way named " + ONLY));
                only.warmUp(WARMUP);
                for (int round = 0; round < ROUNDS; round++) {
                    only.measure(n, "m" + round);
                }
                only.print(n);
                return;
            }
            // Round after round, each way in turn: one burst of each measured back to back moved by 15-30% between
            // runs on two cores, the ratios with them; the medians of interleaved rounds hold still.
            for (Way way : ways) {
                way.warmUp(WARMUP);
            }
            for (int round = 0; round < ROUNDS; round++) {
                for (Way way : ways) {
                    way.measure(n, "m" + round);
                }
            }
            for (Way way : ways) {
                way.print(n);
            }
            runc = runcWay.median();
            local = localWay.median();
            remote = remoteWay.median();
            ctr = ctrWay.median();
        }

        System.out.printf(Locale.ROOT, "ratios: local/runc %.2fx, remote/runc %.2fx, containerd/runc %.2fx, "
                + "remote/containerd %.2fx, local/containerd %.2fx%n", local / runc, remote / runc, ctr / runc,
                remote / ctr, local / ctr);
        System.out.printf(Locale.ROOT, "RESULT parallel=%d runc_s=%.2f local_s=%.2f remote_s=%.2f containerd_s=%.2f "
                + "local_vs_runc=%.2f remote_vs_containerd=%.2f%n", n, runc, local, remote, ctr, local / runc,
                remote / ctr);
        if (Double.isNaN(runc + local + remote + ctr)) {
            System.exit(1);
        }
    }

    /** One burst of {@code count} containers of one way, their ids beginning with {@code prefix}; seconds. */
    @FunctionalInterface
    private interface Burst {
        double run(int count, String prefix) throws Exception;
    }

    /** One way of running the containers, and its measured bursts; a failed burst ends its measuring (NaN). */
    private static final class Way {
        private final String name;
        private final Burst burst;
        private final List<Double> seconds = new ArrayList<>();
        private boolean failed;

        Way(String name, Burst burst) {
            this.name = name;
            this.burst = burst;
        }

        void warmUp(int count) {
            for (int round = 0; round < WARMUP_ROUNDS && count > 0 && !failed; round++) {
                String prefix = "w" + round;
                failed = Double.isNaN(orFailed(name + " (warm-up)", () -> burst.run(count, prefix)));
            }
        }

        void measure(int count, String prefix) {
            if (!failed) {
                long[] machineBefore = machineCpuTicks();
                long jvmBefore = BenchProcesses.jvmCpuNanos();
                long compilingBefore = BenchProcesses.compilerCpuTicks();
                double taken = orFailed(name, () -> burst.run(count, prefix));
                long jvm = BenchProcesses.jvmCpuNanos() - jvmBefore;
                long compiling = BenchProcesses.compilerCpuTicks() - compilingBefore;
                long[] machineAfter = machineCpuTicks();
                failed = Double.isNaN(taken);
                seconds.add(taken);
                // Where a burst's CPU went: on two cores the machine is busy all along, so what this JVM takes
                // is taken from runc and the shims.
                double busy = (machineAfter[0] - machineBefore[0]) / (double) BenchProcesses.TICKS_PER_SECOND;
                double all = (machineAfter[1] - machineBefore[1]) / (double) BenchProcesses.TICKS_PER_SECOND;
                System.out.printf(Locale.ROOT, "%-28s %7.2f s: this JVM's CPU %.2f s (its JIT's threads %.2f s), "
                        + "the machine's %.2f s busy of %.2f s%n", name, taken, jvm / 1e9,
                        compiling / (double) BenchProcesses.TICKS_PER_SECOND, busy, all);
            }
        }

        double median() {
            if (failed || seconds.isEmpty()) {
                return Double.NaN;
            }
            List<Double> sorted = seconds.stream().sorted().toList();
            int middle = sorted.size() / 2;
            return sorted.size() % 2 == 1 ? sorted.get(middle) : (sorted.get(middle - 1) + sorted.get(middle)) / 2;
        }

        void print(int n) {
            System.out.printf(Locale.ROOT, "%-28s %7.2f s for %d at once (median of %s; after %d x %d at once to "
                    + "warm up)%n", name, median(), n, seconds.stream().map(s -> String.format(Locale.ROOT, "%.2f", s))
                    .toList(), WARMUP_ROUNDS, WARMUP);
        }
    }

    /** The machine's busy and total CPU ticks (all CPUs) from the first line of /proc/stat. */
    private static long[] machineCpuTicks() {
        try {
            String[] fields = Files.readAllLines(Path.of("/proc/stat")).getFirst().trim().split("\\s+");
            long total = 0;
            long idle = 0;
            for (int i = 1; i < fields.length && i <= 8; i++) {
                long ticks = Long.parseLong(fields[i]);
                total += ticks;
                if (i == 4 || i == 5) {
                    idle += ticks;
                }
            }
            return new long[] {total - idle, total};
        } catch (IOException e) {
            return new long[] {0, 0};
        }
    }

    /**
     * A way's figure, or NaN when it failed (a container that did not print its line or exit 0, a timeout): the
     * others are still measured, and the failure is printed instead of a figure.
     */
    private static double orFailed(String name, Callable<Double> way) {
        try {
            return way.call();
        } catch (Exception e) {
            System.out.printf(Locale.ROOT, "%-28s FAILED: %s%n", name, e);
            return Double.NaN;
        }
    }

    /** One way of running a container to completion: its output, or an exception naming what went wrong. */
    @FunctionalInterface
    private interface Launch {
        Callable<String> prepare(String id) throws Exception;
    }

    /** N external lifecycles at once, each on a thread of its own; seconds from the first launch to the last exit. */
    private static double round(String name, int n, String prefix, Launch launch,
            Consumer<String> cleanup) throws Exception {
        List<String> ids = new ArrayList<>();
        List<Callable<String>> tasks = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String id = name.charAt(0) + prefix + i;
            ids.add(id);
            tasks.add(launch.prepare(id));
        }
        boolean ok = false;
        // Platform threads: each blocks in native code (DirectLaunch), which would pin a virtual thread's carrier.
        try (ExecutorService threads = Executors.newThreadPerTaskExecutor(Thread.ofPlatform().factory())) {
            long start = System.nanoTime();
            List<Future<String>> outputs = new ArrayList<>();
            for (Callable<String> task : tasks) {
                outputs.add(threads.submit(task));
            }
            for (int i = 0; i < n; i++) {
                check(ids.get(i), outputs.get(i).get());
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            ok = true;
            return seconds;
        } finally {
            if (!ok) {
                ids.forEach(cleanup);
            }
        }
    }

    /** {@code command} launched as the plugin launches runc ({@link DirectLaunch}); its stdout, if it exits 0. */
    private static Callable<String> external(List<String> command) {
        return () -> {
            DirectLaunch.Result result = DirectLaunch.run(command, true);
            if (result.exit() != 0) {
                throw new IllegalStateException(String.join(" ", command) + " exited " + result.exit() + ": "
                        + result.err());
            }
            return result.out();
        };
    }

    /**
     * {@code runc run} on a bundle written and removed within the timed lifecycle, as the plugin's ways create and
     * delete theirs within it (and as the sequential benchmark's {@code runc run} does).
     */
    private static Callable<String> runcRun(Path work, byte[] spec, String id) {
        Path bundle = work.resolve("runc-bundles").resolve(id);
        Callable<String> run = external(List.of("runc", "--root", work.resolve("runc-root").toString(), "run",
                "--bundle", bundle.toString(), id));
        return () -> {
            Files.createDirectories(bundle);
            Files.write(bundle.resolve("config.json"), spec);
            String out = run.call();
            Files.delete(bundle.resolve("config.json"));
            Files.delete(bundle);
            return out;
        };
    }

    private static List<String> ctrRun(String containerd, Path rootfs, String id) {
        List<String> command = new ArrayList<>(ctr(containerd, "run", "--rm", "--rootfs", rootfs.toString(), id));
        command.addAll(List.of(COMMAND));
        return command;
    }

    private static List<String> ctr(String containerd, String... args) {
        List<String> command = new ArrayList<>(List.of("ctr", "--address", containerd, "--namespace", NAMESPACE));
        command.addAll(List.of(args));
        return command;
    }

    private static void check(String id, String output) {
        if (!EXPECTED.equals(output)) {
            throw new IllegalStateException(id + " printed " + output.length() + " bytes, not one empty line: "
                    + output);
        }
    }

    private static double pluginRound(int n, RuntimePlugin runtime, Function<String,
            Mono<String>> lifecycle, String prefix) {
        IntFunction<String> id = i -> prefix + i;
        boolean ok = false;
        try {
            long start = System.nanoTime();
            Flux.range(0, n)
                    .flatMap(i -> lifecycle.apply(id.apply(i)).doOnNext(out -> check(id.apply(i), out)), n)
                    .then().block(TIMEOUT);
            ok = true;
            return (System.nanoTime() - start) / 1e9;
        } finally {
            if (!ok) {
                Flux.range(0, n).flatMap(i -> runtime.forceDelete(NAMESPACE, id.apply(i))
                        .onErrorResume(e -> Mono.fromRunnable(() -> System.err.println(e.getMessage()))), 8)
                        .then().block(TIMEOUT);
            }
        }
    }

    /** Bundle, shim, create with stdout read as a stream, start, exit, delete, shutdown, bundle delete. */
    private static Mono<String> pluginLifecycle(RuntimePlugin runtime, ShimOpt opt, RuncOptions runc, byte[] spec,
            Path rootfs, String id) {
        return runtime.create(NAMESPACE, id, spec).flatMap(bundle -> bundle.newShimClient(opt, runc)
                .flatMap(shim -> shim.create(new CreateOptions(List.of(Mount.readOnlyBind(rootfs)),
                                Stdio.streams(null)))
                        .flatMap(io -> Mono.zip(collect(io.stdout()), collect(io.stderr()),
                                shim.start().then(shim.awaitExit())))
                        .flatMap(done -> {
                            ExitStatus exit = done.getT3();
                            if (exit.status() != 0) {
                                return Mono.error(new IllegalStateException(id + " exited " + exit.status()
                                        + ": " + done.getT2()));
                            }
                            return shim.delete().then(shim.shutdown()).thenReturn(done.getT1());
                        }))
                .flatMap(out -> bundle.delete().thenReturn(out)));
    }

    private static Mono<String> collect(Flux<byte[]> stream) {
        return stream.collect(ByteArrayOutputStream::new, (buffer, chunk) -> buffer.writeBytes(chunk))
                .map(buffer -> buffer.toString(StandardCharsets.UTF_8));
    }
}
