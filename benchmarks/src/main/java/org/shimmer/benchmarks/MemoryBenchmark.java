package org.shimmer.benchmarks;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import javax.management.JMException;
import org.shimmer.examples.host.PluginHost;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.events.InMemoryEventExchange;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import reactor.core.Disposable;
import reactor.core.Disposables;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Schedulers;

/**
 * Memory per running container: COUNT containers running {@code sleep}, started STEP at a time, with a measurement
 * after every step; the figure is the least-squares slope over those points, in KiB per container. Run by
 * {@code benchmarks/run-lifecycle --memory} in a fresh JVM per mode, so earlier work does not skew it:
 * <ul>
 *   <li>{@code local}: the plugin's local shim; this JVM's anonymous RSS ({@code smaps_rollup}; the script fixes and
 *       pre-touches the heap, so the slope is native memory, stacks and metadata) and its heap after a full GC;</li>
 *   <li>{@code remote}: the remote shim; this JVM's anonymous RSS beside the shims' PSS
 *       ({@code containerd-shim-runc-v2} processes of this run);</li>
 *   <li>{@code containerd}: {@code ctr run -d} against the private containerd; the PSS of the daemon and its
 *       shims.</li>
 * </ul>
 * Each container's stdout and stderr are streams read by a subscriber (plugin) or FIFOs (containerd), as a platform
 * capturing logs would have them. Everything started is removed at the end, on failure too. Prints one
 * {@code FIGURES} line, which the script folds into its {@code RESULT} line.
 *
 * <p>Usage: {@code MemoryBenchmark local|remote|containerd COUNT STEP WORK_DIR ROOTFS RUNC_SPEC CONTAINERD_SOCKET
 * CONTAINERD_PID}.
 */
public final class MemoryBenchmark {

    private static final Duration TIMEOUT = Duration.ofMinutes(10);
    private static final Duration SETTLE = Duration.ofSeconds(1);
    private static final Duration JIT_IDLE = Duration.ofSeconds(10);
    private static final int READS = 3;
    /**
     * HotSpot keeps the arena chunks of a finished compilation in a pool it frees every 5 s: a C2 compilation
     * just before a point left 7 MiB of them in its reads (NMT's "Arena Chunk", the remote mode's last point),
     * not memory any container holds. Each point waits this long once the JIT is idle, before its reads.
     */
    private static final Duration CHUNK_POOL_CLEANING = Duration.ofSeconds(6);
    private static final int MIN_WARMUP = 8;
    private static final int CONCURRENCY = 4;
    private static final String NAMESPACE = "memory";
    private static final String SHIM = "containerd-shim-runc-v2";

    public static void main(String[] args) throws Exception {
        if (args.length != 8) {
            System.err.println("usage: MemoryBenchmark local|remote|containerd COUNT STEP WORK_DIR ROOTFS RUNC_SPEC "
                    + "CONTAINERD_SOCKET CONTAINERD_PID");
            System.exit(2);
        }
        String mode = args[0];
        int count = Integer.parseInt(args[1]);
        int step = Integer.parseInt(args[2]);
        Path work = Path.of(args[3]);
        Path rootfs = Path.of(args[4]);
        String spec = new String(Files.readAllBytes(Path.of(args[5])), StandardCharsets.UTF_8)
                .replace("\"/bin/true\"", "\"/bin/sleep\", \"3600\"")
                .replace("\"path\": \"" + rootfs + "\"", "\"path\": \"rootfs\"");
        if (!spec.contains("\"3600\"")) {
            throw new IllegalArgumentException("no /bin/true in " + args[5]);
        }
        switch (mode) {
            case "local", "remote" -> plugin(mode, count, step, work, rootfs, spec.getBytes(StandardCharsets.UTF_8));
            case "containerd" -> containerd(count, step, work, rootfs, args[6], Long.parseLong(args[7]));
            default -> throw new IllegalArgumentException("mode " + mode + ": local, remote or containerd");
        }
    }

    private static void plugin(String mode, int count, int step, Path work, Path rootfs, byte[] spec)
            throws Exception {
        boolean remote = mode.equals("remote");
        ShimOpt opt = remote
                ? ShimOpt.remote(Path.of("/usr/bin/" + SHIM), work.resolve("daemon").toString(), null, false, null)
                : ShimOpt.local();
        InMemoryEventExchange events = new InMemoryEventExchange();
        List<String> ids = new ArrayList<>();
        List<ShimClient> shims = new ArrayList<>();
        Disposable.Composite readers = Disposables.composite();
        try (PluginHost host = PluginHost.start(Path.of("benchmarks/target/plugins"))) {
            RuntimePlugin runtime = host.runtime().withConfig(
                    new RuntimeConfig(work.resolve("state-" + mode), work.resolve("work-" + mode), events));
            RuncOptions runc = RuncOptions.defaults().withRuntimeRoot(work.resolve("runc-" + mode).toString());
            try {
                // Classes loaded, code compiled, pools grown to their resting size before the baseline: with 8
                // containers only, the JIT's code cache and profiles still grew by ~13 KiB per container started
                // afterwards (NMT), which is not memory a running container holds.
                List<String> warm = new ArrayList<>();
                List<ShimClient> warmShims = new ArrayList<>();
                startPlugin(runtime, opt, runc, spec, rootfs, "w", 0, Math.max(MIN_WARMUP, count / 2), warm,
                        warmShims, readers);
                stopPlugin(runtime, warm, warmShims);
                settle();
                List<double[]> rss = new ArrayList<>();
                List<double[]> heap = new ArrayList<>();
                List<double[]> shimPss = new ArrayList<>();
                MemoryDiagnosis diagnosis = null;
                for (int running = 0, before = 0; ; before = running, running = Math.min(running + step, count)) {
                    if (running > 0) {
                        startPlugin(runtime, opt, runc, spec, rootfs, "m", before, running - before, ids, shims,
                                readers);
                    }
                    Thread.sleep(SETTLE);
                    if (running == 0 && MemoryDiagnosis.enabled()) {
                        diagnosis = MemoryDiagnosis.baseline();
                    }
                    long heapKib = heapAfterGcKib();
                    long rssKib = residentKib();
                    long pss = remote ? pss(BenchProcesses.pidsOf(SHIM, work)) : 0;
                    rss.add(new double[] {running, rssKib});
                    heap.add(new double[] {running, heapKib});
                    shimPss.add(new double[] {running, pss});
                    System.out.printf(Locale.ROOT, "%-6s %4d running: JVM anonymous RSS %8d KiB, heap after GC %7d KiB%s%s%n",
                            mode, running, rssKib, heapKib, remote ? ", shims' PSS " + pss + " KiB" : "",
                            diagnosis == null ? "" : diagnosis.nmtLine());
                    if (running >= count) {
                        break;
                    }
                }
                if (diagnosis != null) {
                    diagnosis.print(count);
                }
                double rssSlope = BenchProcesses.slope(rss);
                double rssMedian = BenchProcesses.medianSlope(rss);
                double heapSlope = BenchProcesses.slope(heap);
                double shimSlope = BenchProcesses.slope(shimPss);
                System.out.printf(Locale.ROOT, "%-6s per running container: JVM anonymous RSS %.2f KiB (Theil-Sen "
                        + "%.2f KiB), heap %.2f KiB%s%n", mode, rssSlope, rssMedian, heapSlope,
                        remote ? String.format(Locale.ROOT, ", shim PSS %.1f KiB", shimSlope) : "");
                System.out.println(remote
                        ? "FIGURES remote_jvm_kib=" + BenchProcesses.format(rssSlope) + " remote_jvm_median_kib="
                                + BenchProcesses.format(rssMedian) + " remote_heap_kib="
                                + BenchProcesses.format(heapSlope) + " remote_shim_pss_kib="
                                + BenchProcesses.format(shimSlope)
                        : "FIGURES local_rss_kib=" + BenchProcesses.format(rssSlope) + " local_rss_median_kib="
                                + BenchProcesses.format(rssMedian) + " local_heap_kib="
                                + BenchProcesses.format(heapSlope));
            } finally {
                readers.dispose();
                stopPlugin(runtime, ids, shims);
            }
        } finally {
            events.dispose();
        }
    }

    private static void startPlugin(RuntimePlugin runtime, ShimOpt opt, RuncOptions runc, byte[] spec, Path rootfs,
            String prefix, int from, int n, List<String> ids, List<ShimClient> shims, Disposable.Composite readers) {
        Flux.range(from, n).flatMap(i -> {
            String id = prefix + i;
            synchronized (ids) {
                ids.add(id);
            }
            return runtime.create(NAMESPACE, id, spec)
                    .flatMap(bundle -> bundle.newShimClient(opt, runc))
                    .doOnNext(shim -> {
                        synchronized (shims) {
                            shims.add(shim);
                        }
                    })
                    .flatMap(shim -> shim.create(new CreateOptions(List.of(Mount.readOnlyBind(rootfs)),
                                    Stdio.streams(null)))
                            .doOnNext(io -> {
                                readers.add(io.stdout().subscribe());
                                readers.add(io.stderr().subscribe());
                            })
                            .then(shim.start()));
        }, CONCURRENCY).then().block(TIMEOUT);
    }

    /** Kills, deletes and shuts down every container; anything that resists is force-deleted. */
    private static void stopPlugin(RuntimePlugin runtime, List<String> ids, List<ShimClient> shims) {
        Flux.fromIterable(List.copyOf(shims)).flatMap(shim -> shim.kill(9, true)
                .then(shim.awaitExit()).then(shim.delete()).then(shim.shutdown())
                .onErrorResume(e -> Mono.empty()), CONCURRENCY).then().block(TIMEOUT);
        Flux.fromIterable(List.copyOf(ids)).flatMap(id -> runtime.forceDelete(NAMESPACE, id)
                .onErrorResume(e -> Mono.fromRunnable(() -> System.err.println(id + ": " + e.getMessage()))),
                CONCURRENCY).then().block(TIMEOUT);
        ids.clear();
        shims.clear();
    }

    private static void containerd(int count, int step, Path work, Path rootfs, String socket, long daemonPid)
            throws Exception {
        List<String> ids = new ArrayList<>();
        try {
            // As the plugin's modes: the daemon's first containers grow it once (code paged in, pools, its
            // metadata), which is not memory a running container holds; the baseline comes after that settled.
            List<String> warm = new ArrayList<>();
            startCtr(socket, rootfs, "w", 0, Math.max(MIN_WARMUP, count / 2), warm);
            warm.forEach(id -> removeCtr(socket, id));
            settleContainerd(daemonPid, work);
            List<double[]> points = new ArrayList<>();
            for (int running = 0, before = 0; ; before = running, running = Math.min(running + step, count)) {
                if (running > 0) {
                    startCtr(socket, rootfs, "m", before, running - before, ids);
                }
                Thread.sleep(SETTLE);
                long daemon = BenchProcesses.smapsKib(daemonPid, "Pss");
                long shims = pss(BenchProcesses.pidsOf(SHIM, work));
                points.add(new double[] {running, daemon + shims});
                System.out.printf(Locale.ROOT, "containerd %4d running: daemon PSS %7d KiB, shims' PSS %8d KiB%n",
                        running, daemon, shims);
                if (running >= count) {
                    break;
                }
            }
            double slope = BenchProcesses.slope(points);
            System.out.printf(Locale.ROOT, "containerd per running container: daemon + shim PSS %.1f KiB%n", slope);
            System.out.println("FIGURES containerd_pss_kib=" + BenchProcesses.format(slope));
        } finally {
            ids.forEach(id -> removeCtr(socket, id));
        }
    }

    /** Runs {@code n} detached {@code sleep}s through ctr, ids {@code prefix + from...}, added to {@code ids}. */
    private static void startCtr(String socket, Path rootfs, String prefix, int from, int n, List<String> ids) {
        List<String> batch = new ArrayList<>();
        for (int i = from; i < from + n; i++) {
            batch.add(prefix + i);
        }
        // Before they run: a failure part way still removes every one.
        ids.addAll(batch);
        Flux.fromIterable(batch).flatMap(id -> Mono.fromCallable(() -> BenchProcesses.run(ctr(socket,
                "run", "-d", "--rootfs", rootfs.toString(), id, "/bin/sleep", "3600")))
                .subscribeOn(Schedulers.boundedElastic()), CONCURRENCY)
                .then().block(TIMEOUT);
    }

    private static void removeCtr(String socket, String id) {
        BenchProcesses.runQuietly(ctr(socket, "task", "rm", "-f", id));
        BenchProcesses.runQuietly(ctr(socket, "container", "rm", id));
    }

    /**
     * Waits until the warm-up's containers are gone from containerd's figures: two reads of the daemon's and the
     * shims' PSS 5 s apart differ by less than 256 KiB (at most 30 s), as {@link #settle()} for the JVM.
     */
    private static void settleContainerd(long daemonPid, Path work) throws IOException, InterruptedException {
        long start = System.nanoTime();
        long previous = BenchProcesses.smapsKib(daemonPid, "Pss") + pss(BenchProcesses.pidsOf(SHIM, work));
        for (int round = 0; round < 6; round++) {
            Thread.sleep(Duration.ofSeconds(5));
            long now = BenchProcesses.smapsKib(daemonPid, "Pss") + pss(BenchProcesses.pidsOf(SHIM, work));
            if (Math.abs(now - previous) < 256) {
                break;
            }
            previous = now;
        }
        System.out.printf(Locale.ROOT, "settled after the warm-up in %.1f s%n", (System.nanoTime() - start) / 1e9);
    }

    private static List<String> ctr(String socket, String... args) {
        List<String> command = new ArrayList<>(List.of("ctr", "--address", socket, "--namespace", NAMESPACE));
        command.addAll(List.of(args));
        return command;
    }

    private static long pss(List<Long> pids) {
        long sum = 0;
        for (long pid : pids) {
            sum += BenchProcesses.smapsKib(pid, "Pss");
        }
        return sum;
    }

    /**
     * This JVM's anonymous resident memory: its file-backed pages (the JDK's libraries, the CDS archive, jars) come
     * and go with the machine's page cache pressure, by MiB between two points on a busy machine, and no container
     * adds any. Read once the JIT has nothing compiling or queued (a C2 compilation in flight holds MiB of
     * arenas: the RSS swung by ±6 MiB between points without it) and the C library returned the memory freed since
     * to the kernel (the arenas of compilations done, otherwise resident at random points of the ramp); the least
     * of three such reads a second apart, as a compiler thread the JVM starts and ends on demand still made single
     * reads jump by 10 MiB.
     */
    private static long residentKib() throws JMException, InterruptedException {
        awaitIdleJit();
        Thread.sleep(CHUNK_POOL_CLEANING);
        long least = Long.MAX_VALUE;
        for (int read = 0; read < READS; read++) {
            if (read > 0) {
                Thread.sleep(SETTLE);
            }
            awaitIdleJit();
            MemoryDiagnosis.command("systemTrimNativeHeap");
            least = Math.min(least, BenchProcesses.smapsKib(ProcessHandle.current().pid(), "Anonymous"));
        }
        return least;
    }

    /**
     * Waits until the warm-up's containers are gone from the figures: the first point was MiB above the next ones
     * otherwise. Settled when two reads 5 s apart, each after a full GC, differ by less than 256 KiB (at most 30 s).
     */
    private static void settle() throws JMException, InterruptedException {
        long start = System.nanoTime();
        heapAfterGcKib();
        long previous = residentKib();
        for (int round = 0; round < 6; round++) {
            Thread.sleep(Duration.ofSeconds(5));
            heapAfterGcKib();
            long now = residentKib();
            if (Math.abs(now - previous) < 256) {
                break;
            }
            previous = now;
        }
        System.out.printf(Locale.ROOT, "settled after the warm-up in %.1f s%n", (System.nanoTime() - start) / 1e9);
    }

    /** Waits until no compilation runs or waits, at most {@link #JIT_IDLE}. */
    private static void awaitIdleJit() throws JMException, InterruptedException {
        long deadline = System.nanoTime() + JIT_IDLE.toNanos();
        while (!jitIdle() && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
    }

    private static boolean jitIdle() throws JMException {
        String queue = MemoryDiagnosis.command("compilerQueue");
        int current = queue.indexOf("Current compiles:");
        int c1 = queue.indexOf("C1 compile queue:");
        int c2 = queue.indexOf("C2 compile queue:");
        return current >= 0 && c1 > current && c2 > c1 && queue.substring(current + 17, c1).isBlank()
                && queue.substring(c1 + 17, c2).strip().equals("Empty")
                && queue.substring(c2 + 17).strip().equals("Empty");
    }

    private static long heapAfterGcKib() {
        System.gc();
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed() / 1024;
    }
}
