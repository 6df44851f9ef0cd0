package org.shimmer.containerd;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A real containerd of the tests' own (root, state, sockets, config; CRI off) with {@code containerd-shim-shimmer-v1}
 * installed by {@code containerd-shim/install} into a prefix on its PATH; a namespace of its own per instance, so
 * runc's state of it ({@code /run/containerd/runc/<namespace>}) is this instance's alone. A busybox root for
 * {@code ctr run --rootfs}.
 */
final class PrivateContainerd {

    static final String RUNTIME = "io.containerd.shimmer.v1";
    static final Duration IDLE_EXIT = Duration.ofSeconds(4);
    private static final Path MODULE = Path.of("").toAbsolutePath();

    final Path work;
    final Path rootfs;
    final String namespace = "shimmer-it-" + UUID.randomUUID().toString().substring(0, 8);
    private final Path prefix;
    private final Path socket;
    private final Map<String, String> shimEnvironment;
    private Process containerd;

    PrivateContainerd() throws IOException, InterruptedException {
        this(Map.of());
    }

    /** With {@code shimEnvironment} added to what containerd gives its shims (after the defaults). */
    PrivateContainerd(Map<String, String> shimEnvironment) throws IOException, InterruptedException {
        this.shimEnvironment = Map.copyOf(shimEnvironment);
        work = Files.createTempDirectory(Path.of("/tmp"), "shimmer-cd-");
        prefix = work.resolve("prefix");
        socket = work.resolve("containerd.sock");
        Result installed = run(List.of(MODULE.resolve("install").toString(), prefix.toString()), null,
                Map.of("JAVA_HOME", System.getProperty("java.home")));
        assertThat(installed.status()).as("install: %s", installed).isZero();
        rootfs = work.resolve("rootfs");
        for (String dir : List.of("bin", "proc", "dev", "sys", "tmp")) {
            Files.createDirectories(rootfs.resolve(dir));
        }
        Files.copy(Path.of("/bin/busybox"), rootfs.resolve("bin/busybox"));
        for (String applet : List.of("sh", "true", "echo", "cat", "sleep", "ls", "wc", "head", "tail")) {
            Files.createSymbolicLink(rootfs.resolve("bin").resolve(applet), Path.of("busybox"));
        }
        Files.writeString(work.resolve("containerd.toml"), """
                version = 2
                root = "%1$s/root"
                state = "%1$s/state"
                disabled_plugins = ["io.containerd.grpc.v1.cri"]
                [grpc]
                  address = "%1$s/containerd.sock"
                [ttrpc]
                  address = "%1$s/containerd.sock.ttrpc"
                """.formatted(work));
        start();
    }

    /** Starts containerd (again), its shims' environment set, and waits for its socket. */
    void start() throws IOException, InterruptedException {
        ProcessBuilder builder = new ProcessBuilder("containerd", "--config", work.resolve("containerd.toml")
                .toString()).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(work.resolve("containerd.log").toFile()));
        builder.environment().put("PATH", prefix.resolve("bin") + ":" + System.getenv("PATH"));
        builder.environment().put("SHIMMER_SHIM_IDLE_EXIT", Long.toString(IDLE_EXIT.toSeconds()));
        builder.environment().putAll(shimEnvironment);
        containerd = builder.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (ctr("version").status() != 0) {
            assertThat(System.nanoTime()).as("containerd did not start: %s", log()).isLessThan(deadline);
            assertThat(containerd.isAlive()).as("containerd exited: %s", log()).isTrue();
            Thread.sleep(100);
        }
    }

    /** containerd's pid. */
    long pid() {
        return containerd.pid();
    }

    /** Stops containerd (SIGTERM, as a service manager does); what it started keeps running. */
    void stop() throws InterruptedException {
        containerd.destroy();
        assertThat(containerd.waitFor(20, TimeUnit.SECONDS)).as("containerd stopped").isTrue();
    }

    String log() {
        try {
            return Files.readString(work.resolve("containerd.log"));
        } catch (IOException e) {
            return e.toString();
        }
    }

    /** {@code ctr --address ... --namespace ... ARGS}, to its end. */
    Result ctr(String... args) throws IOException, InterruptedException {
        return run(ctrCommand(args), null, Map.of());
    }

    /** {@code ctr run --runtime ours --rootfs ROOTFS [OPTIONS] ID COMMAND...}. */
    Result runContainer(List<String> options, String id, String... command) throws IOException, InterruptedException {
        return ctr(runArgs(options, id, command));
    }

    String[] runArgs(List<String> options, String id, String... command) {
        // ctr makes a container's stdio FIFOs in /run/containerd/fifo by default and leaves them when the task
        // ends other than by its own delete (a killed daemon, the shim's delete binary): 12 each run of this class.
        List<String> args = new ArrayList<>(List.of("run", "--runtime", RUNTIME, "--fifo-dir",
                work.resolve("fifo").toString()));
        args.addAll(options);
        args.addAll(List.of("--rootfs", rootfs.toString(), id));
        args.addAll(Arrays.asList(command));
        return args.toArray(String[]::new);
    }

    List<String> ctrCommand(String... args) {
        List<String> command = new ArrayList<>(List.of("ctr", "--address", socket.toString(), "--namespace",
                namespace));
        command.addAll(Arrays.asList(args));
        return command;
    }

    /** The status column of {@code ctr task ls} for {@code id}, if it has a task. */
    Optional<String> taskStatus(String id) throws IOException, InterruptedException {
        return ctr("task", "ls").stdout().lines().skip(1).map(line -> line.trim().split("\\s+"))
                .filter(columns -> columns.length == 3 && columns[0].equals(id)).map(columns -> columns[2])
                .findFirst();
    }

    /** Waits until {@code id}'s task has {@code status}. */
    void awaitStatus(String id, String status) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!taskStatus(id).equals(Optional.of(status))) {
            assertThat(System.nanoTime()).as("task %s never became %s: %s", id, status, ctr("task", "ls"))
                    .isLessThan(deadline);
            Thread.sleep(50);
        }
    }

    /** The pids of the shim daemons serving this containerd. */
    List<Long> daemons() {
        String address = "-address " + socket;
        return ProcessHandle.allProcesses()
                .filter(process -> process.info().commandLine().filter(line -> line.contains(
                        "org.shimmer.containerd.ShimMain") && line.contains(address) && line.endsWith("daemon"))
                        .isPresent())
                .map(ProcessHandle::pid).toList();
    }

    /** The daemon's state directory, named as the binary names it. */
    Path daemonState() {
        return daemonState(namespace);
    }

    /** The state directory of this containerd's daemon for {@code namespace}. */
    Path daemonState(String namespace) {
        try {
            byte[] key = java.security.MessageDigest.getInstance("SHA-256").digest(("shimmer-v1\n" + socket + "\n"
                    + namespace).getBytes(StandardCharsets.UTF_8));
            return Path.of("/run/shimmer-containerd", java.util.HexFormat.of().formatHex(key));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The daemons' children: container processes, and runc while it runs. */
    List<ProcessHandle> daemonChildren() {
        return daemons().stream().flatMap(pid -> ProcessHandle.of(pid).stream()).flatMap(ProcessHandle::children)
                .toList();
    }

    /** Processes whose command line mentions {@code text}, but for ctr, containerd and the daemon. */
    static List<String> processesMentioning(String text) {
        return ProcessHandle.allProcesses()
                .map(process -> process.info().commandLine().orElse(""))
                .filter(line -> line.contains(text) && !line.contains("ShimMain") && !line.startsWith("ctr ")
                        && !line.contains("containerd --config"))
                .toList();
    }

    /** What runc still has of this namespace. */
    List<String> runcState() throws IOException {
        Path root = Path.of("/run/containerd/runc", namespace);
        if (!Files.isDirectory(root)) {
            return List.of();
        }
        try (Stream<Path> entries = Files.list(root)) {
            return entries.map(Path::toString).toList();
        }
    }

    /** Mounts under the work directory (bundles, rootfs). */
    List<String> mounts() throws IOException {
        return Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                .filter(line -> line.contains(work.toString())).toList();
    }

    /**
     * Removes every task and container left, stops containerd, then waits for the daemon's idle exit (which
     * removes its socket) and checks that nothing is left.
     */
    void close() throws IOException, InterruptedException {
        try {
            for (String line : ctr("container", "ls", "-q").stdout().lines().toList()) {
                ctr("task", "kill", "-s", "KILL", line.trim());
                ctr("task", "delete", "--force", line.trim());
                ctr("container", "delete", line.trim());
            }
            List<Long> daemons = daemons();
            long deadline = System.nanoTime() + IDLE_EXIT.plusSeconds(15).toNanos();
            while (!daemons().isEmpty() && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            assertThat(daemons()).as("the daemon exits once idle").isEmpty();
            for (long pid : daemons) {
                // Gone, once the machine's init has reaped it.
                while (ProcessHandle.of(pid).isPresent() && System.nanoTime() < deadline) {
                    Thread.sleep(100);
                }
                assertThat(ProcessHandle.of(pid)).as("daemon %d", pid).isEmpty();
            }
            assertThat(runcState()).isEmpty();
            assertThat(mounts()).isEmpty();
            Path state = daemonState();
            assertThat(state.resolve("pid")).as("the exited daemon's pid file").doesNotExist();
            assertThat(Path.of("/run/containerd/s", state.getFileName().toString())).as("its socket").doesNotExist();
            assertThat(processesMentioning(work.toString())).as("processes of the test").isEmpty();
            List<Path> containerCgroups = new ArrayList<>();
            for (Path namespaceCgroup : namespaceCgroups()) {
                try (Stream<Path> children = Files.list(namespaceCgroup)) {
                    children.filter(Files::isDirectory).forEach(containerCgroups::add);
                }
            }
            assertThat(containerCgroups).as("container cgroups left").isEmpty();
        } finally {
            stop();
            for (long pid : daemons()) {
                ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
            }
            run(List.of("rm", "-rf", work.toString(), daemonState().toString()), null, Map.of());
            // runc's directory of the namespace, if it is empty (runc leaves it).
            run(List.of("rmdir", "--ignore-fail-on-non-empty", "/run/containerd/runc/" + namespace), null, Map.of());
            // runc leaves the namespace's cgroup above its containers' (containerd keeps its namespaces' too): one
            // more per hierarchy each run, as each instance has a namespace of its own. rmdir: the kernel refuses a
            // cgroup that still has a child or a process.
            for (Path namespaceCgroup : namespaceCgroups()) {
                run(List.of("rmdir", namespaceCgroup.toString()), null, Map.of());
            }
        }
    }

    /** The cgroup of this instance's namespace in each hierarchy that has one. */
    private List<Path> namespaceCgroups() throws IOException {
        Path cgroups = Path.of("/sys/fs/cgroup");
        if (Files.exists(cgroups.resolve("cgroup.controllers"))) {
            return Files.isDirectory(cgroups.resolve(namespace)) ? List.of(cgroups.resolve(namespace)) : List.of();
        }
        try (Stream<Path> hierarchies = Files.list(cgroups)) {
            // Symbolic links (cpu -> cpu,cpuacct) name a hierarchy already listed.
            return hierarchies.filter(hierarchy -> !Files.isSymbolicLink(hierarchy))
                    .map(hierarchy -> hierarchy.resolve(namespace))
                    .filter(Files::isDirectory)
                    .toList();
        }
    }

    record Result(int status, String stdout, String stderr) {}

    /**
     * {@code ctr events}, its lines as they come. Subscribed once the events of a probe container arrived (ctr says
     * nothing when it has subscribed): no event of what follows is missed.
     */
    final class Events implements AutoCloseable {
        private final Process ctr;
        private final java.util.concurrent.BlockingQueue<String> lines = new java.util.concurrent.LinkedBlockingQueue<>();
        private final List<String> seen = new java.util.concurrent.CopyOnWriteArrayList<>();

        Events() throws IOException, InterruptedException {
            ctr = new ProcessBuilder(ctrCommand("events")).redirectErrorStream(true).start();
            Thread.ofPlatform().daemon().name("ctr-events").start(() -> {
                try (var reader = ctr.inputReader(StandardCharsets.UTF_8)) {
                    String line;
                    while ((line = reader.readLine()) != null) {
                        lines.add(line);
                    }
                } catch (IOException ended) {
                    // ctr was stopped.
                }
            });
            String probe = "probe-" + UUID.randomUUID().toString().substring(0, 8);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (true) {
                assertThat(runContainer(List.of("--rm"), probe, "/bin/true").status()).isZero();
                if (awaitDelete(probe, Math.min(deadline, System.nanoTime() + TimeUnit.SECONDS.toNanos(2)))) {
                    break;
                }
                assertThat(System.nanoTime()).as("ctr events never subscribed").isLessThan(deadline);
            }
        }

        /** Waits for {@code id}'s {@code /tasks/delete}; its task events, in the order they came. */
        List<String> taskEventsOf(String id) throws InterruptedException {
            assertThat(awaitDelete(id, System.nanoTime() + TimeUnit.SECONDS.toNanos(20)))
                    .as("the delete event of %s: %s", id, seen).isTrue();
            return seen.stream().filter(line -> line.contains("/tasks/")
                    && line.contains("\"container_id\":\"" + id + "\"")).toList();
        }

        private boolean awaitDelete(String id, long deadline) throws InterruptedException {
            while (seen.stream().noneMatch(line -> line.contains("/tasks/delete")
                    && line.contains("\"container_id\":\"" + id + "\""))) {
                String line = lines.poll(Math.max(deadline - System.nanoTime(), 0), TimeUnit.NANOSECONDS);
                if (line == null) {
                    return false;
                }
                seen.add(line);
            }
            return true;
        }

        @Override
        public void close() {
            ctr.destroyForcibly();
        }
    }

    /** Runs {@code command} to its end (60 s at most), feeding it {@code stdin}. */
    static Result run(List<String> command, byte[] stdin, Map<String, String> environment) throws IOException,
            InterruptedException {
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.environment().putAll(environment);
        if (stdin == null) {
            builder.redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()));
        }
        Process process = builder.start();
        CompletableFuture<String> out = read(process.getInputStream());
        CompletableFuture<String> err = read(process.getErrorStream());
        if (stdin != null) {
            try (var input = process.getOutputStream()) {
                input.write(stdin);
            }
        }
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError(command + " did not end within 60 s");
        }
        return new Result(process.exitValue(), out.join(), err.join());
    }

    /** Reads {@code stream} to its end on a thread of its own (the common pool has one thread on two cores). */
    static CompletableFuture<String> read(InputStream stream) {
        return CompletableFuture.supplyAsync(() -> {
            try (stream) {
                return new String(stream.readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }, runnable -> Thread.ofPlatform().daemon().name("ctr-output").start(runnable));
    }
}
