package org.shimmer.benchmarks;

import com.google.protobuf.Empty;
import com.google.protobuf.StringValue;
import com.sun.management.OperatingSystemMXBean;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.shimmer.runtime.linux.shim.proto.ConnectRequest;
import org.shimmer.runtime.linux.shim.proto.ConnectResponse;
import org.shimmer.runtime.linux.shim.proto.CreateTaskRequest;
import org.shimmer.runtime.linux.shim.proto.CreateTaskResponse;
import org.shimmer.runtime.linux.shim.proto.DeleteRequest;
import org.shimmer.runtime.linux.shim.proto.DeleteResponse;
import org.shimmer.runtime.linux.shim.proto.KillRequest;
import org.shimmer.runtime.linux.shim.proto.ShutdownRequest;
import org.shimmer.runtime.linux.shim.proto.StartRequest;
import org.shimmer.runtime.linux.shim.proto.StartResponse;
import org.shimmer.runtime.linux.shim.proto.StateRequest;
import org.shimmer.runtime.linux.shim.proto.StateResponse;
import org.shimmer.runtime.linux.shim.proto.WaitRequest;
import org.shimmer.runtime.linux.shim.proto.WaitResponse;
import org.shimmer.runtime.linux.ttrpc.CallOptions;
import org.shimmer.runtime.linux.ttrpc.TtrpcClient;
import org.shimmer.runtime.linux.ttrpc.TtrpcConnection;
import org.shimmer.runtime.linux.ttrpc.TtrpcServer;
import org.shimmer.runtime.linux.ttrpc.TtrpcServerHandle;
import org.shimmer.runtime.linux.ttrpc.TtrpcService;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;
import reactor.netty.resources.LoopResources;

/**
 * Unary ttRPC round trips per second on one unix-socket connection with 1, 16 and 64 calls in flight, ours beside
 * containerd's Go ttrpc (v1.1.1, Debian's, driven by the {@code ttrpcbench} program under {@code benchmarks/go/})
 * in one run: each client against the real {@code containerd-shim-runc-v2}'s {@code State} on a running
 * container, and every client/server pair on an echo of a ~100-byte message, each server in its own process, so
 * the CPU time per call of the client (its process: getrusage for Go, the JVM's for ours) and of the server
 * ({@code /proc/PID/stat}) are told apart.
 *
 * <p>Each figure is measured {@code ttrpc.rounds} times (system property, default 2), ours and Go's alternating
 * which goes first, each time after {@code ttrpc.warmup} seconds (default 2) for {@code ttrpc.seconds} (default
 * 3); the figure is the sum of calls over the sum of time.
 *
 * <p>Usage: {@code TtrpcBenchmark WORK_DIR SHIM_BUNDLE_DIR GO_TTRPCBENCH}; the bundle must run a long
 * {@code sleep} and its directory name is the container id. {@code TtrpcBenchmark --serve SOCKET} is our echo
 * server alone, which prints {@code ready} once bound and stops when its standard input closes.
 */
public final class TtrpcBenchmark {

    private static final Duration WARMUP = Duration.ofMillis(Math.round(
            Double.parseDouble(System.getProperty("ttrpc.warmup", "2")) * 1000));
    private static final Duration MEASURE = Duration.ofMillis(Math.round(
            Double.parseDouble(System.getProperty("ttrpc.seconds", "3")) * 1000));
    private static final int ROUNDS = Integer.getInteger("ttrpc.rounds", 2);
    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final int[] IN_FLIGHT = {1, 16, 64};
    private static final String ECHO = "shimmer.bench.Echo";
    private static final String TASK = "containerd.task.v2.Task";
    private static final String NAMESPACE = "shimmer-bench";
    private static final long CLOCK_TICK_NANOS = 10_000_000L;
    private static final Pattern GO_RESULT = Pattern.compile("calls=(\\d+) seconds=([0-9.]+) cpu_ns=(\\d+)");

    /** Calls answered, over how long, with the client's and the server's CPU time over that time. */
    private record Sample(long calls, double seconds, long clientCpuNanos, long serverCpuNanos) {

        Sample plus(Sample other) {
            return new Sample(calls + other.calls, seconds + other.seconds, clientCpuNanos + other.clientCpuNanos,
                    serverCpuNanos + other.serverCpuNanos);
        }

        double callsPerSecond() {
            return calls / seconds;
        }

        double clientMicrosPerCall() {
            return clientCpuNanos / 1e3 / calls;
        }

        double serverMicrosPerCall() {
            return serverCpuNanos / 1e3 / calls;
        }
    }

    /** One measurement of one client against one server, at a given number of calls in flight. */
    private interface Measurement {
        Sample measure(int inFlight) throws Exception;
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 2 && args[0].equals("--serve")) {
            serve(Path.of(args[1]));
            return;
        }
        if (args.length != 3) {
            System.err.println("usage: TtrpcBenchmark WORK_DIR SHIM_BUNDLE_DIR GO_TTRPCBENCH | --serve SOCKET");
            System.exit(2);
        }
        Path work = Path.of(args[0]);
        Path bundle = Path.of(args[1]);
        Path go = Path.of(args[2]);
        LoopResources loops = LoopResources.create("bench", 1, 2, true, false);
        Map<String, Sample> results = new LinkedHashMap<>();
        System.out.printf(Locale.ROOT, "%d round(s) of %s warm-up + %s measured per figure; CPU in us per call%n",
                ROUNDS, WARMUP, MEASURE);
        try {
            echo(work, go, loops, results);
            shimState(bundle, work, go, loops, results);
        } finally {
            loops.disposeLater(Duration.ZERO, TIMEOUT).block(TIMEOUT);
        }
        System.out.println(resultLine(results));
    }

    /** Our echo server alone, in this JVM, until standard input closes. */
    private static void serve(Path socket) throws IOException {
        LoopResources loops = LoopResources.create("bench-server", 1, 2, true, false);
        Scheduler blocking = Schedulers.newBoundedElastic(4, 100, "bench-blocking");
        TtrpcService service = TtrpcService.named(ECHO)
                .method("Echo", StringValue.parser(), (call, request) -> Mono.just(request));
        TtrpcServerHandle server = TtrpcServer.create().socket(socket).runOn(loops).blockingOn(blocking)
                .service(service).bind().block(TIMEOUT);
        System.out.println("ready");
        System.out.flush();
        while (System.in.read() != -1) {
            // Nothing is sent: EOF is the signal to stop.
        }
        server.disposeNow(TIMEOUT);
        loops.disposeLater(Duration.ZERO, TIMEOUT).block(TIMEOUT);
        blocking.dispose();
    }

    private static void echo(Path work, Path go, LoopResources loops, Map<String, Sample> results)
            throws Exception {
        Path oursSocket = work.resolve("sockets/ours.sock");
        Path goSocket = work.resolve("go-sockets/go.sock");
        Files.createDirectories(goSocket.getParent());
        try (Server oursServer = Server.start(List.of(javaCommand(), "--enable-native-access=ALL-UNNAMED", "-cp",
                        System.getProperty("java.class.path"), TtrpcBenchmark.class.getName(), "--serve",
                        oursSocket.toString()));
                Server goServer = Server.start(List.of(go.toString(), "server", "-socket", goSocket.toString()))) {
            StringValue message = StringValue.of("x".repeat(100));
            Map<String, Measurement> pairs = new LinkedHashMap<>();
            for (Server server : List.of(oursServer, goServer)) {
                Path socket = server == oursServer ? oursSocket : goSocket;
                String serverName = server == oursServer ? "ours" : "go";
                TtrpcConnection connection = TtrpcClient.create().socket(socket).runOn(loops).connect()
                        .block(TIMEOUT);
                server.connections.add(connection);
                pairs.put("ours_" + serverName, inFlight -> ours(
                        () -> connection.call(ECHO, "Echo", message, StringValue.parser()), inFlight, server.pid()));
                pairs.put("go_" + serverName, inFlight -> goClient(List.of(go.toString(), "client", "-socket",
                        socket.toString(), "-call", "echo"), inFlight, server.pid()));
            }
            // The JIT compiles both JVMs' hot paths, at every level, before anything counts: on a busy machine a
            // few seconds of warm-up left our client and server at a quarter of their speed.
            for (int inFlight : IN_FLIGHT) {
                pairs.get("ours_ours").measure(inFlight);
            }
            for (int inFlight : IN_FLIGHT) {
                Map<String, Sample> level = rounds(pairs, inFlight);
                level.forEach((pair, sample) -> {
                    report("echo, client_server " + pair, inFlight, sample);
                    results.put("echo_" + inFlight + "_" + pair, sample);
                });
            }
        }
    }

    private static void shimState(Path bundle, Path work, Path go, LoopResources loops, Map<String, Sample> results)
            throws Exception {
        String id = bundle.getFileName().toString();
        Shim shim = Shim.start(bundle, work, NAMESPACE, id);
        TtrpcConnection connection = TtrpcClient.create().socket(shim.socket()).runOn(loops).connect()
                .block(TIMEOUT);
        CallOptions options = CallOptions.defaults().withNamespace(NAMESPACE);
        long shimPid = connection.call(TASK, "Connect", ConnectRequest.newBuilder().setId(id).build(),
                ConnectResponse.parser(), options).block(TIMEOUT).getShimPid();
        try {
            int pid = connection.call(TASK, "Create", CreateTaskRequest.newBuilder().setId(id)
                    .setBundle(bundle.toString()).build(), CreateTaskResponse.parser(), options)
                    .block(TIMEOUT).getPid();
            Mono<WaitResponse> exit = connection.call(TASK, "Wait", WaitRequest.newBuilder().setId(id).build(),
                    WaitResponse.parser(), options.withTimeout(Duration.ofMinutes(10))).cache();
            exit.subscribe(response -> {}, error -> {});
            connection.call(TASK, "Start", StartRequest.newBuilder().setId(id).build(), StartResponse.parser(),
                    options).block(TIMEOUT);
            StateRequest state = StateRequest.newBuilder().setId(id).build();
            System.out.printf(Locale.ROOT, "container %s running as pid %d under shim pid %d%n", id, pid, shimPid);
            Map<String, Measurement> clients = new LinkedHashMap<>();
            clients.put("ours", inFlight -> ours(
                    () -> connection.call(TASK, "State", state, StateResponse.parser(), options), inFlight, shimPid));
            clients.put("go", inFlight -> goClient(List.of(go.toString(), "client", "-socket",
                    shim.socket().toString(), "-call", "state", "-id", id, "-namespace", NAMESPACE), inFlight,
                    shimPid));
            // As on echo: State's answer is parsed by code the echo runs did not compile.
            clients.get("ours").measure(IN_FLIGHT[0]);
            clients.get("ours").measure(IN_FLIGHT[1]);
            for (int inFlight : IN_FLIGHT) {
                Map<String, Sample> level = rounds(clients, inFlight);
                level.forEach((client, sample) -> {
                    report("shim State, client " + client, inFlight, sample);
                    results.put("shim_" + inFlight + "_" + client, sample);
                });
            }
            connection.call(TASK, "Kill", KillRequest.newBuilder().setId(id).setSignal(9).build(), Empty.parser(),
                    options).block(TIMEOUT);
            exit.block(TIMEOUT);
            connection.call(TASK, "Delete", DeleteRequest.newBuilder().setId(id).build(), DeleteResponse.parser(),
                    options).block(TIMEOUT);
            connection.call(TASK, "Shutdown", ShutdownRequest.newBuilder().setId(id).build(), Empty.parser(),
                    options).block(TIMEOUT);
            connection.onClose().block(TIMEOUT);
        } finally {
            connection.dispose();
            shim.cleanUp(shimPid);
        }
    }

    /** Each measurement {@link #ROUNDS} times, the order reversed every other round, summed per measurement. */
    private static Map<String, Sample> rounds(Map<String, Measurement> measurements, int inFlight) throws Exception {
        Map<String, Sample> sums = new LinkedHashMap<>();
        List<String> order = new ArrayList<>(measurements.keySet());
        for (int round = 0; round < ROUNDS; round++) {
            for (String name : order) {
                sums.merge(name, measurements.get(name).measure(inFlight), Sample::plus);
            }
            Collections.reverse(order);
        }
        Map<String, Sample> inOrder = new LinkedHashMap<>();
        measurements.keySet().forEach(name -> inOrder.put(name, sums.get(name)));
        return inOrder;
    }

    /** Our client in this JVM: keeps {@code inFlight} calls going for the warm-up, then for the measurement. */
    private static Sample ours(Supplier<Mono<?>> call, int inFlight, long serverPid) throws IOException {
        run(call, inFlight, WARMUP);
        var os = (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        long serverBefore = cpuNanosOf(serverPid);
        long cpuBefore = os.getProcessCpuTime();
        long start = System.nanoTime();
        long calls = run(call, inFlight, MEASURE);
        double seconds = (System.nanoTime() - start) / 1e9;
        long cpu = os.getProcessCpuTime() - cpuBefore;
        return new Sample(calls, seconds, cpu, cpuNanosOf(serverPid) - serverBefore);
    }

    private static long run(Supplier<Mono<?>> call, int inFlight, Duration duration) {
        long deadline = System.nanoTime() + duration.toNanos();
        // Each lane issues its next call when the previous answer arrives: exactly inFlight outstanding.
        return Flux.range(0, inFlight)
                .flatMap(lane -> Mono.defer(call).repeat(() -> System.nanoTime() < deadline).count(), inFlight)
                .reduce(0L, Long::sum)
                .block(duration.plus(TIMEOUT));
    }

    /** containerd's Go client in a {@code ttrpcbench} process; the server's CPU is sampled as it measures. */
    private static Sample goClient(List<String> command, int inFlight, long serverPid) throws Exception {
        List<String> full = new ArrayList<>(command);
        full.addAll(List.of("-inflight", Integer.toString(inFlight), "-warmup", WARMUP.toMillis() + "ms",
                "-duration", MEASURE.toMillis() + "ms"));
        Process process = new ProcessBuilder(full).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try (BufferedReader out = new BufferedReader(
                new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line = out.readLine();
            if (!"measuring".equals(line)) {
                throw new IllegalStateException("ttrpcbench client said " + line + " instead of measuring");
            }
            long serverBefore = cpuNanosOf(serverPid);
            line = out.readLine();
            long serverCpu = cpuNanosOf(serverPid) - serverBefore;
            Matcher result = line == null ? null : GO_RESULT.matcher(line);
            if (result == null || !result.matches()) {
                throw new IllegalStateException("ttrpcbench client said " + line);
            }
            if (!process.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS) || process.exitValue() != 0) {
                throw new IllegalStateException("ttrpcbench client failed: " + full);
            }
            return new Sample(Long.parseLong(result.group(1)), Double.parseDouble(result.group(2)),
                    Long.parseLong(result.group(3)), serverCpu);
        } finally {
            process.destroyForcibly();
        }
    }

    /** User plus system CPU time of all the threads of process {@code pid}, from {@code /proc/PID/stat}. */
    private static long cpuNanosOf(long pid) throws IOException {
        String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
        // The command name may hold spaces: fields are counted after its closing parenthesis (field 2).
        String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return (Long.parseLong(fields[11]) + Long.parseLong(fields[12])) * CLOCK_TICK_NANOS;
    }

    private static void report(String what, int inFlight, Sample sample) {
        System.out.printf(Locale.ROOT, "%-28s in flight %2d: %,9.0f calls/s  client %6.1f  server %6.1f us CPU/call%n",
                what, inFlight, sample.callsPerSecond(), sample.clientMicrosPerCall(), sample.serverMicrosPerCall());
    }

    /**
     * Every figure: {@code <bench>_<inflight>_<pair>=calls/s} with {@code _ccpu} (client) and {@code _scpu}
     * (server) in us per call; then the ratios ours/Go: per in-flight level on the shim, and on echo both ends
     * ours over both ends Go's ({@code echo_N_ratio}) and our client over Go's, both against Go's server
     * ({@code echo_N_client_ratio}).
     */
    private static String resultLine(Map<String, Sample> results) {
        StringBuilder line = new StringBuilder("RESULT");
        for (int inFlight : IN_FLIGHT) {
            ratio(line, "shim_" + inFlight + "_ratio", results, "shim_" + inFlight + "_ours", "shim_" + inFlight + "_go");
        }
        for (int inFlight : IN_FLIGHT) {
            ratio(line, "echo_" + inFlight + "_ratio", results, "echo_" + inFlight + "_ours_ours",
                    "echo_" + inFlight + "_go_go");
            ratio(line, "echo_" + inFlight + "_client_ratio", results, "echo_" + inFlight + "_ours_go",
                    "echo_" + inFlight + "_go_go");
        }
        results.forEach((name, sample) -> line.append(String.format(Locale.ROOT, " %s=%d %s_ccpu=%.1f %s_scpu=%.1f",
                name, Math.round(sample.callsPerSecond()), name, sample.clientMicrosPerCall(), name,
                sample.serverMicrosPerCall())));
        return line.toString();
    }

    private static void ratio(StringBuilder line, String key, Map<String, Sample> results, String ours, String go) {
        line.append(String.format(Locale.ROOT, " %s=%.2f", key,
                results.get(ours).callsPerSecond() / results.get(go).callsPerSecond()));
    }

    private static String javaCommand() {
        return ProcessHandle.current().info().command().orElse(System.getProperty("java.home") + "/bin/java");
    }

    /** A server process that prints {@code ready} once it serves, and stops when its standard input closes. */
    private record Server(Process process, List<TtrpcConnection> connections) implements AutoCloseable {

        static Server start(List<String> command) throws IOException {
            Process process = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            BufferedReader out = new BufferedReader(
                    new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
            String line = out.readLine();
            if (!"ready".equals(line)) {
                process.destroyForcibly();
                throw new IllegalStateException(command + " said " + line + " instead of ready");
            }
            return new Server(process, new ArrayList<>());
        }

        long pid() {
            return process.pid();
        }

        @Override
        public void close() throws IOException {
            connections.forEach(TtrpcConnection::dispose);
            process.getOutputStream().close();
            // The Go server stops on SIGTERM; ours when its input closes.
            process.destroy();
            process.onExit().orTimeout(TIMEOUT.toSeconds(), TimeUnit.SECONDS)
                    .exceptionally(timedOut -> {
                        process.destroyForcibly();
                        return process;
                    })
                    .join();
        }
    }

    /** A shim started by hand, as containerd would. */
    private record Shim(Path bundle, Path work, String namespace, String id, Path socket) {

        static Shim start(Path bundle, Path work, String namespace, String id) throws Exception {
            Files.deleteIfExists(bundle.resolve("log"));
            Files.createFile(bundle.resolve("log"));
            Process starter = new ProcessBuilder(command(work, namespace, id, "start"))
                    .directory(bundle.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectError(ProcessBuilder.Redirect.INHERIT)
                    .start();
            String address = new String(starter.getInputStream().readAllBytes()).strip();
            if (starter.waitFor() != 0 || !address.startsWith("unix://")) {
                throw new IllegalStateException("shim start failed: " + address);
            }
            return new Shim(bundle, work, namespace, id, Path.of(address.substring("unix://".length())));
        }

        void cleanUp(long pid) throws Exception {
            if (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
                new ProcessBuilder(command(work, namespace, id, "delete")).directory(bundle.toFile())
                        .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                        .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD)
                        .start().waitFor();
                Optional<ProcessHandle> left = ProcessHandle.of(pid);
                left.ifPresent(ProcessHandle::destroyForcibly);
                if (left.isPresent()) {
                    left.get().onExit().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
                }
                // A killed shim leaves its socket in /run/containerd/s, under a name no later run reuses.
                Files.deleteIfExists(socket);
            }
        }

        private static List<String> command(Path work, String namespace, String id, String action) {
            return List.of("containerd-shim-runc-v2", "-namespace", namespace, "-address",
                    work.resolve("unused.sock").toString(), "-publish-binary", "/bin/false", "-id", id, action);
        }
    }
}
