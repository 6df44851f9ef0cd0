package org.shimmer.benchmarks;

import com.google.protobuf.Empty;
import com.google.protobuf.StringValue;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;
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
 * Unary ttRPC round trips per second on one unix-socket connection, with 1, 16 and 64 calls in flight: our client
 * against our server (an echo of a ~100-byte message), and our client against the real
 * {@code containerd-shim-runc-v2}'s {@code State} on a running container. Also the JVM's CPU time per call: for
 * the echo runs that is client and server together (both live in this JVM); for the shim runs it is the client's
 * alone.
 *
 * <p>Usage: {@code TtrpcBenchmark WORK_DIR [SHIM_BUNDLE_DIR]}. The bundle, if given, must run a long {@code sleep};
 * its directory name is the container id.
 */
public final class TtrpcBenchmark {

    private static final Duration WARMUP = Duration.ofSeconds(2);
    private static final Duration MEASURE = Duration.ofSeconds(5);
    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String ECHO = "shimmer.bench.Echo";
    private static final String TASK = "containerd.task.v2.Task";
    private static final String NAMESPACE = "shimmer-bench";

    private record Figure(double callsPerSecond, double cpuMicrosPerCall) {}

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: TtrpcBenchmark WORK_DIR [SHIM_BUNDLE_DIR]");
            System.exit(2);
        }
        Path work = Path.of(args[0]);
        LoopResources loops = LoopResources.create("bench", 1, 2, true, false);
        Scheduler blocking = Schedulers.newBoundedElastic(4, 100, "bench-blocking");
        Map<String, Figure> results = new LinkedHashMap<>();
        try {
            echo(work, loops, blocking, results);
            if (args.length > 1) {
                shimState(Path.of(args[1]), work, loops, results);
            }
        } finally {
            loops.disposeLater(Duration.ZERO, TIMEOUT).block(TIMEOUT);
            blocking.dispose();
        }

        StringBuilder result = new StringBuilder("RESULT");
        results.forEach((name, figure) -> result.append(' ').append(name).append('=')
                .append(Math.round(figure.callsPerSecond())));
        System.out.println(result);
    }

    private static void echo(Path work, LoopResources loops, Scheduler blocking, Map<String, Figure> results) {
        TtrpcService service = TtrpcService.named(ECHO)
                .method("Echo", StringValue.parser(), (call, request) -> Mono.just(request));
        TtrpcServerHandle server = TtrpcServer.create().socket(work.resolve("sockets/echo.sock")).runOn(loops)
                .blockingOn(blocking).service(service).bind().block(TIMEOUT);
        TtrpcConnection connection = TtrpcClient.create().socket(server.socket()).runOn(loops).connect()
                .block(TIMEOUT);
        StringValue message = StringValue.of("x".repeat(100));
        try {
            for (int inFlight : new int[] {1, 16, 64}) {
                Figure figure = measure(() -> connection.call(ECHO, "Echo", message, StringValue.parser()), inFlight);
                report("echo (our client -> our server)", inFlight, figure, "client+server");
                results.put("echo_" + inFlight, figure);
            }
        } finally {
            connection.dispose();
            server.disposeNow(TIMEOUT);
        }
    }

    private static void shimState(Path bundle, Path work, LoopResources loops, Map<String, Figure> results)
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
            for (int inFlight : new int[] {1, 16}) {
                Figure figure = measure(() -> connection.call(TASK, "State", state, StateResponse.parser(), options),
                        inFlight);
                report("shim State (our client -> containerd-shim-runc-v2)", inFlight, figure, "client");
                results.put("shim_state_" + inFlight, figure);
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

    /** Keeps {@code inFlight} calls going for the warm-up, then for the measurement, and counts the latter. */
    private static Figure measure(Supplier<Mono<?>> call, int inFlight) {
        run(call, inFlight, WARMUP);
        var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        long cpuBefore = os.getProcessCpuTime();
        long start = System.nanoTime();
        long calls = run(call, inFlight, MEASURE);
        double seconds = (System.nanoTime() - start) / 1e9;
        double cpuMicros = (os.getProcessCpuTime() - cpuBefore) / 1e3;
        return new Figure(calls / seconds, cpuMicros / calls);
    }

    private static long run(Supplier<Mono<?>> call, int inFlight, Duration duration) {
        long deadline = System.nanoTime() + duration.toNanos();
        // Each lane issues its next call when the previous answer arrives: exactly inFlight outstanding.
        return Flux.range(0, inFlight)
                .flatMap(lane -> Mono.defer(call).repeat(() -> System.nanoTime() < deadline).count(), inFlight)
                .reduce(0L, Long::sum)
                .block(duration.plus(TIMEOUT));
    }

    private static void report(String what, int inFlight, Figure figure, String cpuOf) {
        System.out.printf(Locale.ROOT, "%-52s in flight %2d: %,10.0f calls/s  %6.1f us CPU/call (%s)%n",
                what, inFlight, figure.callsPerSecond(), figure.cpuMicrosPerCall(), cpuOf);
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
                ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
            }
        }

        private static java.util.List<String> command(Path work, String namespace, String id, String action) {
            return java.util.List.of("containerd-shim-runc-v2", "-namespace", namespace, "-address",
                    work.resolve("unused.sock").toString(), "-publish-binary", "/bin/false", "-id", id, action);
        }
    }
}
