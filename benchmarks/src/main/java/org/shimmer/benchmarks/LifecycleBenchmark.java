package org.shimmer.benchmarks;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import reactor.core.publisher.Mono;

/**
 * Full container lifecycles of {@code /bin/true}, one after another, three ways in one run:
 * <ul>
 *   <li>local: the same through the plugin's in-process shim, which runs runc itself;</li>
 *   <li>remote: through the plugin zip loaded by PF4J — bundle create, shim start, create (the rootfs a read-only
 *       bind mount, as a snapshot would be), start, wait, delete, shutdown, bundle delete;</li>
 *   <li>runc: {@code runc run} on a prepared bundle;</li>
 *   <li>containerd: {@code ctr run --rm --rootfs} against a private containerd.</li>
 * </ul>
 * Each is warmed up first; the figure is the mean wall time per lifecycle. Local and {@code runc run}, the two sides
 * of the ratio the issue asks for, alternate one lifecycle each, so that both see the same machine.
 *
 * <p>Usage: {@code LifecycleBenchmark N WORK_DIR ROOTFS RUNC_SPEC CONTAINERD_SOCKET}: {@code RUNC_SPEC} is a
 * config.json running {@code /bin/true} with {@code root.path} = ROOTFS.
 */
public final class LifecycleBenchmark {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);
    private static final int WARMUP = Integer.getInteger("shimmer.bench.warmup", 5);
    private static final String NAMESPACE = "bench";
    /** Local lifecycles of the profiled pass, after the measured ones (sampling is kept out of the figures). */
    private static final int PROFILED = 30;
    /**
     * Whether the local lifecycle is one reactive chain, blocked on once, rather than a {@code block()} per step:
     * the way a Reactor host composes it, without a wake-up of the caller's thread between steps.
     */
    private static final boolean CHAINED = Boolean.getBoolean("shimmer.bench.chained");
    /** The steps of one plugin lifecycle, in order, as the breakdown names them. */
    static final List<String> STEPS = List.of("bundle create", "shim client", "create", "start", "wait", "delete",
            "shutdown", "bundle delete");
    /**
     * Past the steps, the slot for the part of "wait" after the plugin reaped the container (its exit status's
     * {@code exitedAt}, taken at the reap): the exit handed on to the caller, Shimmer's time, not the container's.
     */
    static final int AFTER_REAP = STEPS.size();
    static final int SLOTS = STEPS.size() + 1;

    public static void main(String[] args) throws Exception {
        if (args.length != 5 || Integer.parseInt(args[0]) < 1) {
            System.err.println("usage: LifecycleBenchmark N WORK_DIR ROOTFS RUNC_SPEC CONTAINERD_SOCKET (N >= 1)");
            System.exit(2);
        }
        int n = Integer.parseInt(args[0]);
        Path work = Path.of(args[1]);
        Path rootfs = Path.of(args[2]);
        byte[] runcSpec = Files.readAllBytes(Path.of(args[3]));
        String containerd = args[4];
        byte[] bundleSpec = new String(runcSpec, StandardCharsets.UTF_8)
                .replace("\"path\": \"" + rootfs + "\"", "\"path\": \"rootfs\"").getBytes(StandardCharsets.UTF_8);

        double remote;
        double local;
        double localOwn;
        double runcMs;
        try (BenchRuntime plugin = new BenchRuntime(work)) {
            RuntimePlugin runtime = plugin.runtime();
            RuncOptions runc = plugin.runc();
            ShimOpt shim = plugin.remoteShim();
            long[] steps = new long[SLOTS];
            try (LocalProfile profile = new LocalProfile(work)) {
                // The ratio's two sides alternate, one lifecycle each in turn: measured one block after the
                // other, `runc run` alone moved by 15% between runs on this machine, and the ratio with it.
                double[] pair = measureAlternating("local (plugin, runc driven in the JVM)", "runc run", n,
                        i -> localLifecycle(runtime, runc, bundleSpec, rootfs, "l" + i,
                                i >= 0 ? steps : new long[SLOTS]),
                        i -> runcLifecycle(work, runcSpec, "r" + i), profile::start);
                local = pair[0];
                runcMs = pair[1];
                profile.startSampling();
                int profiled = Math.min(n, PROFILED);
                for (int i = 0; i < profiled; i++) {
                    localLifecycle(runtime, runc, bundleSpec, rootfs, "q" + i, new long[SLOTS]);
                }
                localOwn = profile.report(local, steps, n, profiled);
            }
            if (Boolean.getBoolean("shimmer.bench.localOnly")) {
                // Iterating on the local shim: its breakdown only, and no RESULT line.
                return;
            }
            remote = measure("remote (plugin + containerd-shim-runc-v2)", n,
                    i -> pluginLifecycle(runtime, shim, runc, bundleSpec, rootfs, "p" + i, new long[SLOTS]));
        }
        // Not in the RESULT line: the floor for any shim that runs runc once per step, as both shims do. A shim
        // learns of the exit as its init's subreaper: so does this JVM (the local shim made it one already).
        Subreaper.become();
        measure("runc create + start + delete (a shim's floor)", n, i -> runcSteps(work, runcSpec, "s" + i));
        double containerdMs = measure("containerd + ctr run --rm", n,
                i -> run(List.of("ctr", "--address", containerd, "--namespace", NAMESPACE, "run", "--rm", "--rootfs",
                        rootfs.toString(), "c" + i, "/bin/true")));

        System.out.printf(Locale.ROOT, "ratios: local/runc %.2fx, remote/runc %.2fx, containerd/runc %.2fx, "
                + "remote/containerd %.2fx%n", local / runcMs, remote / runcMs, containerdMs / runcMs,
                remote / containerdMs);
        System.out.printf(Locale.ROOT, "RESULT local_ms=%.1f remote_ms=%.1f runc_ms=%.1f containerd_ms=%.1f "
                + "local_own_ms=%.1f local_vs_runc=%.2f%n", local, remote, runcMs, containerdMs, localOwn,
                local / runcMs);
    }

    @FunctionalInterface
    private interface Measuring {
        void begin() throws IOException;
    }

    @FunctionalInterface
    private interface Lifecycle {
        void run(int index) throws Exception;
    }

    private static double measure(String name, int n, Lifecycle lifecycle) throws Exception {
        return measure(name, n, lifecycle, () -> {});
    }

    /** Runs the warm-up, then {@code measuring}, then the {@code n} measured lifecycles. */
    private static double measure(String name, int n, Lifecycle lifecycle, Measuring measuring) throws Exception {
        for (int i = 0; i < WARMUP; i++) {
            lifecycle.run(-1 - i);
        }
        measuring.begin();
        long start = System.nanoTime();
        for (int i = 0; i < n; i++) {
            lifecycle.run(i);
        }
        double ms = (System.nanoTime() - start) / 1e6 / n;
        System.out.printf(Locale.ROOT, "%-44s %8.1f ms per lifecycle (%d runs after %d warm-up)%n", name, ms, n,
                WARMUP);
        return ms;
    }

    /**
     * Warms both up, then runs {@code n} of each, alternating; the mean ms per lifecycle of each. {@code measuring}
     * starts before the first measured one.
     */
    private static double[] measureAlternating(String firstName, String secondName, int n, Lifecycle first,
            Lifecycle second, Measuring measuring) throws Exception {
        // The warm-up runs the very loop that is measured, its CPU reads included: code first run in the measured
        // lifecycles was compiled during them, beside the lifecycles, on two cores.
        long[] nanos = new long[2];
        long firstCpu = 0;
        long compilingBefore = 0;
        long[] pluginBefore = null;
        for (int i = -WARMUP; i < n; i++) {
            if (i == 0) {
                measuring.begin();
                nanos = new long[2];
                firstCpu = 0;
                compilingBefore = BenchProcesses.compilerCpuTicks();
                pluginBefore = BenchProcesses.threadCpuTicks("shimmer-");
            }
            // Warm-up lifecycles are numbered -1, -2, ...: their ids never meet the measured ones'.
            int index = i < 0 ? -1 - (i + WARMUP) : i;
            long cpuBefore = BenchProcesses.jvmCpuNanos();
            long began = System.nanoTime();
            first.run(index);
            long between = System.nanoTime();
            firstCpu += BenchProcesses.jvmCpuNanos() - cpuBefore;
            second.run(index);
            nanos[0] += between - began;
            nanos[1] += System.nanoTime() - between;
        }
        double[] ms = {nanos[0] / 1e6 / n, nanos[1] / 1e6 / n};
        if (CHAINED) {
            System.out.printf(Locale.ROOT, "%-44s one reactive chain per lifecycle, blocked on once "
                    + "(-Dshimmer.bench.chained=true)%n", firstName);
        }
        System.out.printf(Locale.ROOT, "%-44s %8.2f ms of the JVM's CPU per lifecycle (all its threads, the JIT's and "
                + "GC's too; not its child processes')%n", firstName, firstCpu / 1e6 / n);
        // Still compiling, the JIT runs beside the lifecycle on two cores and much of its code is not yet at its
        // last tier: the own time is then above what the same code takes once compiled (a check of the warm-up).
        double compiling = (BenchProcesses.compilerCpuTicks() - compilingBefore) * 1000.0
                / BenchProcesses.TICKS_PER_SECOND / n;
        System.out.printf(Locale.ROOT, "%-44s %8.2f ms of the JIT's compiler threads' CPU per pair (both sides)%n",
                firstName, compiling);
        // The plugin's own threads (io, exit poll): where the own time is CPU, and whether it is Java or the kernel.
        long[] pluginAfter = BenchProcesses.threadCpuTicks("shimmer-");
        double userMs = (pluginAfter[0] - pluginBefore[0]) * 1000.0 / BenchProcesses.TICKS_PER_SECOND / n;
        double kernelMs = (pluginAfter[1] - pluginBefore[1]) * 1000.0 / BenchProcesses.TICKS_PER_SECOND / n;
        System.out.printf(Locale.ROOT, "%-44s %8.2f ms of the plugin's threads' CPU per lifecycle: %.2f user, %.2f "
                + "kernel (threads alive at the end)%n", firstName, userMs + kernelMs, userMs, kernelMs);
        System.out.printf(Locale.ROOT, "%-44s %8.1f ms per lifecycle (%d runs after %d warm-up, alternating with "
                + "%s)%n", firstName, ms[0], n, WARMUP, secondName);
        System.out.printf(Locale.ROOT, "%-44s %8.1f ms per lifecycle (%d runs after %d warm-up, alternating with "
                + "%s)%n", secondName, ms[1], n, WARMUP, firstName);
        return ms;
    }

    private static void localLifecycle(RuntimePlugin runtime, RuncOptions runc, byte[] spec, Path rootfs, String id,
            long[] steps) {
        if (CHAINED) {
            chainedLifecycle(runtime, runc, spec, rootfs, id, steps);
        } else {
            pluginLifecycle(runtime, ShimOpt.local(), runc, spec, rootfs, id, steps);
        }
    }

    /**
     * {@link #pluginLifecycle} on the local shim as one chain: each step subscribes when the one before it ends, on
     * whichever thread that ended it; the marks are taken there.
     */
    private static void chainedLifecycle(RuntimePlugin runtime, RuncOptions runc, byte[] spec, Path rootfs,
            String id, long[] steps) {
        String name = id.replace('-', 'w');
        long[] marks = new long[STEPS.size() + 1];
        // The start's end, the exit seen by the caller, the reap (see AFTER_REAP).
        Instant[] instants = new Instant[3];
        CreateOptions create = new CreateOptions(List.of(Mount.readOnlyBind(rootfs)), Stdio.none());
        marks[0] = System.nanoTime();
        int status = runtime.create(NAMESPACE, name, spec)
                .doOnNext(made -> marks[1] = System.nanoTime())
                .flatMap(bundle -> bundle.newShimClient(ShimOpt.local(), runc)
                        .doOnNext(made -> marks[2] = System.nanoTime())
                        .flatMap(shim -> shim.create(create)
                                .doOnNext(io -> marks[3] = System.nanoTime())
                                .then(Mono.defer(shim::start)).doOnNext(pid -> {
                                    marks[4] = System.nanoTime();
                                    instants[0] = Instant.now();
                                })
                                .then(Mono.defer(shim::awaitExit)).doOnNext(exit -> {
                                    instants[1] = Instant.now();
                                    marks[5] = System.nanoTime();
                                    instants[2] = exit.exitedAt();
                                })
                                .flatMap(exit -> Mono.defer(shim::delete)
                                        .doOnTerminate(() -> marks[6] = System.nanoTime())
                                        .then(Mono.defer(shim::shutdown))
                                        .doOnTerminate(() -> marks[7] = System.nanoTime())
                                        .thenReturn(exit.status())))
                        .flatMap(exited -> bundle.delete().thenReturn(exited)))
                .block(TIMEOUT);
        marks[8] = System.nanoTime();
        steps[AFTER_REAP] += afterReap(instants[2], instants[0], instants[1]);
        for (int step = 0; step < STEPS.size(); step++) {
            steps[step] += marks[step + 1] - marks[step];
        }
        if (status != 0) {
            throw new IllegalStateException("/bin/true exited " + status);
        }
    }

    /** One lifecycle; adds each step's nanoseconds to {@code steps} (indexed as {@link #STEPS}). */
    private static void pluginLifecycle(RuntimePlugin runtime, ShimOpt opt, RuncOptions runc, byte[] spec,
            Path rootfs, String id, long[] steps) {
        String name = id.replace('-', 'w');
        long t0 = System.nanoTime();
        Bundle bundle = runtime.create(NAMESPACE, name, spec).block(TIMEOUT);
        long t1 = System.nanoTime();
        ShimClient shim = bundle.newShimClient(opt, runc).block(TIMEOUT);
        long t2 = System.nanoTime();
        shim.create(new CreateOptions(List.of(Mount.readOnlyBind(rootfs)), Stdio.none())).block(TIMEOUT);
        long t3 = System.nanoTime();
        shim.start().block(TIMEOUT);
        long t4 = System.nanoTime();
        Instant started = Instant.now();
        ExitStatus exit = shim.awaitExit().block(TIMEOUT);
        Instant seen = Instant.now();
        long t5 = System.nanoTime();
        int status = exit.status();
        shim.delete().block(TIMEOUT);
        long t6 = System.nanoTime();
        shim.shutdown().block(TIMEOUT);
        long t7 = System.nanoTime();
        bundle.delete().block(TIMEOUT);
        long t8 = System.nanoTime();
        long[] marks = {t0, t1, t2, t3, t4, t5, t6, t7, t8};
        steps[AFTER_REAP] += afterReap(exit.exitedAt(), started, seen);
        for (int step = 0; step < STEPS.size(); step++) {
            steps[step] += marks[step + 1] - marks[step];
        }
        if (status != 0) {
            throw new IllegalStateException("/bin/true exited " + status);
        }
    }

    /**
     * Nanoseconds from the reap ({@code exitedAt}), or from the start's end if the reap came before, to the exit
     * seen by the caller: the part of the wait that is Shimmer's delivery of the exit.
     */
    private static long afterReap(Instant exitedAt, Instant started, Instant seen) {
        Instant from = exitedAt.isAfter(started) ? exitedAt : started;
        return Math.max(0, Duration.between(from, seen).toNanos());
    }

    private static void runcLifecycle(Path work, byte[] spec, String id) throws Exception {
        Path bundle = Files.createDirectories(work.resolve("runc-bundles").resolve(id));
        Files.write(bundle.resolve("config.json"), spec);
        run(List.of("runc", "--root", work.resolve("runc-root").toString(), "run", "--bundle", bundle.toString(), id));
        Files.delete(bundle.resolve("config.json"));
        Files.delete(bundle);
    }

    /**
     * {@code runc create}, {@code start} and {@code delete}, waiting in between for the container's exit as a shim
     * does: its init, re-parented to this JVM (a subreaper), reaped here. Three runc processes, no fourth to look.
     */
    private static void runcSteps(Path work, byte[] spec, String id) throws Exception {
        Path bundle = Files.createDirectories(work.resolve("runc-bundles").resolve(id));
        Files.write(bundle.resolve("config.json"), spec);
        Path pidFile = bundle.resolve("init.pid");
        String root = work.resolve("runc-root").toString();
        // The container inherits create's stdio: it must not be a pipe we wait on.
        if (DirectLaunch.run(List.of("runc", "--root", root, "create", "--bundle", bundle.toString(), "--pid-file",
                pidFile.toString(), id), false).exit() != 0) {
            throw new IllegalStateException("runc create failed");
        }
        int init = Integer.parseInt(Files.readString(pidFile).strip());
        run(List.of("runc", "--root", root, "start", id));
        int status = Subreaper.awaitExit(init);
        run(List.of("runc", "--root", root, "delete", id));
        Files.delete(pidFile);
        Files.delete(bundle.resolve("config.json"));
        Files.delete(bundle);
        if (status != 0) {
            throw new IllegalStateException("/bin/true exited " + status);
        }
    }

    /** Runs {@code command} as the plugin runs runc ({@link DirectLaunch}), failing unless it exits 0. */
    private static void run(List<String> command) {
        DirectLaunch.Result result = DirectLaunch.run(command, true);
        if (result.exit() != 0) {
            throw new IllegalStateException(String.join(" ", command) + " exited " + result.exit() + ": "
                    + result.out() + result.err());
        }
    }
}
