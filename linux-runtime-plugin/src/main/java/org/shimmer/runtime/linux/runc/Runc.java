package org.shimmer.runtime.linux.runc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.function.Function;
import org.shimmer.runtime.ResourceExhaustedException;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.linux.shim.TaskErrors;
import org.shimmer.runtime.linux.sys.SpawnedProcess;
import org.shimmer.runtime.shim.ShimException;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;

/**
 * Runs {@code runc}: the one place that builds its command lines. Every command runs on the io scheduler, logs
 * JSON to {@code log.json} in the bundle, and fails with runc's own message from that log rather than "exit status
 * 1", typed by {@link TaskErrors#classify} (runc's "no space left on device" is a
 * {@link ResourceExhaustedException}); a command whose caller cancels is killed with every
 * process it forked, its {@code runc init} included, and reaped ({@link RuncInvocation}), not left running.
 *
 * <p>Every {@code Mono} here signals on the io scheduler, so a caller may do blocking follow-up work in place
 * rather than hop to another io thread (each hop is a thread wake-up, the most of our own time per step).
 *
 * <p>Global flags: {@code --root <runtimeRoot>/<namespace>} (the layout the containerd shim uses too),
 * {@code --log <bundle>/log.json --log-format json}, {@code --systemd-cgroup} and {@code --criu} when asked for.
 */
public final class Runc {

    /** How one command's standard streams are connected. */
    public record Stdio(ProcessBuilder.Redirect in, ProcessBuilder.Redirect out, ProcessBuilder.Redirect err) {
        /** /dev/null for all three. */
        public static final Stdio NULL = new Stdio(ProcessBuilder.Redirect.from(new File("/dev/null")),
                ProcessBuilder.Redirect.DISCARD, ProcessBuilder.Redirect.DISCARD);
    }

    private static final ObjectMapper JSON = JsonMapper.builder().build();

    private final String binary;
    private final Path root;
    private final boolean systemdCgroup;
    private final Optional<String> criu;
    private final Path bundle;
    private final Scheduler io;
    private final Function<Runnable, Disposable> cutByStop;

    /** A runner whose commands a stop always waits for. */
    public Runc(RuncOptions options, String namespace, Path bundle, Scheduler io) {
        this(options, namespace, bundle, io, RuncInvocation.NEVER_CUT);
    }

    /**
     * A runner whose {@code runc create} the runtime's stop kills rather than waits for: {@code cutByStop} is
     * {@code RuntimeResources::cutByStop} of the runtime whose io scheduler {@code io} is. A create so cut fails with
     * {@code UnavailableException}; what runc made by then stays for the next runtime (its delete, or a forced one).
     */
    public Runc(RuncOptions options, String namespace, Path bundle, Scheduler io,
            Function<Runnable, Disposable> cutByStop) {
        this.binary = options.effectiveBinaryName();
        this.root = Path.of(Objects.requireNonNull(options.runtimeRoot(), "runtime root not resolved")).resolve(namespace);
        this.systemdCgroup = options.systemdCgroup();
        this.criu = options.criu();
        this.bundle = bundle;
        this.io = io;
        this.cutByStop = Objects.requireNonNull(cutByStop, "cutByStop");
    }

    /** runc's state directory for this namespace. */
    public Path root() {
        return root;
    }

    /**
     * The init process runc recorded for a container: its pid and when it started, in clock ticks after boot (the
     * 22nd field of {@code /proc/<pid>/stat}), which runc compares to tell its init from a process that got the pid
     * after it.
     */
    public record Init(int pid, long startTicks) {}

    /**
     * The init runc recorded in {@code state.json} of container {@code id} (runc 1.0 and later write
     * {@code init_process_pid} and {@code init_process_start} at create); empty when runc has no such container or
     * its state cannot be read. Blocking.
     */
    public Optional<Init> recordedInit(String id) {
        return recordedInit(id, false);
    }

    /**
     * {@link #recordedInit} of a container runc made from this runner's bundle: the {@code bundle=} label runc puts
     * in the container's config names the same directory. Empty for a container of that id made from another bundle
     * (two state roots given one runc root): a runtime that took it for its own would signal and delete another
     * bundle's container. Blocking.
     */
    public Optional<Init> recordedInitOfThisBundle(String id) {
        return recordedInit(id, true);
    }

    private Optional<Init> recordedInit(String id, boolean ofThisBundle) {
        try {
            JsonNode state = JSON.readTree(Files.readAllBytes(root.resolve(id).resolve("state.json")));
            if (ofThisBundle && !madeFromThisBundle(state)) {
                return Optional.empty();
            }
            JsonNode pid = state.path("init_process_pid");
            JsonNode start = state.path("init_process_start");
            if (!pid.canConvertToInt() || pid.asInt() <= 0 || !start.canConvertToLong() || start.asLong() <= 0) {
                return Optional.empty();
            }
            return Optional.of(new Init(pid.asInt(), start.asLong()));
        } catch (IOException | RuntimeException unreadable) {
            return Optional.empty();
        }
    }

    /**
     * Whether container {@code id} is paused, as {@code runc state} would say (its freezer cgroup is frozen); false
     * when runc has no such container. Blocking: no runc process, which a recovery would pay per container.
     *
     * @throws IOException when runc's state or the cgroup cannot be read
     */
    public boolean paused(String id) throws IOException {
        Path state = root.resolve(id).resolve("state.json");
        return Files.exists(state) && FrozenState.frozen(JSON.readTree(Files.readAllBytes(state)));
    }

    private boolean madeFromThisBundle(JsonNode state) throws IOException {
        for (JsonNode label : state.path("config").path("labels")) {
            String text = label.asText("");
            if (text.startsWith("bundle=")) {
                Path named = Path.of(text.substring("bundle=".length()));
                return Files.exists(named) && Files.isSameFile(named, bundle);
            }
        }
        return false;
    }

    /** The full command line for {@code args}. */
    public List<String> command(String... args) {
        List<String> command = new ArrayList<>(List.of(binary, "--root", root.toString(),
                "--log", bundle.resolve("log.json").toString(), "--log-format", "json"));
        if (systemdCgroup) {
            command.add("--systemd-cgroup");
        }
        criu.ifPresent(path -> {
            command.add("--criu");
            command.add(path);
        });
        command.addAll(List.of(args));
        return command;
    }

    /** {@code runc create}: the init process exists, stopped before the user's program; its pid is returned. */
    public Mono<Integer> create(String id, Path pidFile, Stdio stdio) {
        return create(id, pidFile, stdio, null);
    }

    /**
     * {@link #create(String, Path, Stdio)} for a process with a terminal. With a
     * {@code consoleSocket} (else null), runc sends the master of the process's new terminal there.
     */
    public Mono<Integer> create(String id, Path pidFile, Stdio stdio, Path consoleSocket) {
        // The only command a stop cuts: its hooks may take as long as they like, and a stop starts no container.
        return run(cutByStop, stdio, console(consoleSocket, "create", "--bundle", bundle.toString(), "--pid-file",
                pidFile.toString(), id)).map(printed -> readPid(pidFile));
    }

    /** {@code runc exec --detach}: runs {@code processSpec} in the container; its pid is returned. */
    public Mono<Integer> exec(String id, Path processSpec, Path pidFile, Stdio stdio, Path consoleSocket) {
        return run(stdio, console(consoleSocket, "exec", "--detach", "--pid-file", pidFile.toString(), "--process",
                processSpec.toString(), id)).map(printed -> readPid(pidFile));
    }

    /** {@code args} with {@code --console-socket <path>} after the command word when there is a socket. */
    private static String[] console(Path consoleSocket, String... args) {
        if (consoleSocket == null) {
            return args;
        }
        List<String> withSocket = new ArrayList<>(List.of(args));
        withSocket.addAll(1, List.of("--console-socket", consoleSocket.toString()));
        return withSocket.toArray(String[]::new);
    }

    /** {@code runc start}. */
    public Mono<Void> start(String id) {
        return run(Stdio.NULL, "start", id).then();
    }

    /**
     * Starts the created container {@code id} whose init is {@code initPid}: in the JVM when runc's state
     * directory is one we know ({@link CreatedStart}), else {@code runc start}. Fails as {@code runc start} would.
     */
    public Mono<Void> start(String id, int initPid) {
        return inJvm("start", id, () -> {
            Path dir = root.resolve(id);
            // runc start would also wait for a NOTIFY_SOCKET it inherited from us: only runc knows how.
            if (System.getenv("NOTIFY_SOCKET") != null || !RuncVersion.knownLayout(binary)
                    || !CreatedStart.admits(dir)) {
                return false;
            }
            try {
                return CreatedStart.start(dir, initPid);
            } catch (CreatedStart.Refused refused) {
                throw TaskErrors.classify("runc start failed: " + refused.getMessage(), refused.getMessage(),
                        new IOException("start of " + id + " in the JVM: " + refused.getMessage()));
            }
        }).then();
    }

    /**
     * Deletes the stopped container {@code id}, whose init has exited and was reaped: in the JVM when runc's
     * destroy would only remove its cgroups and state directory ({@link StoppedDelete}), else {@code runc delete}.
     */
    public Mono<Void> deleteStopped(String id) {
        return inJvm("delete", id, () -> {
            if (systemdCgroup || !RuncVersion.knownLayout(binary)) {
                return false;
            }
            Optional<StoppedDelete.Plan> plan;
            try {
                plan = StoppedDelete.plan(root, id, JSON);
            } catch (IOException unreadable) {
                // Nothing removed yet: runc may know better.
                return false;
            }
            if (plan.isEmpty()) {
                return false;
            }
            StoppedDelete.execute(plan.get());
            return true;
        }).then();
    }

    /** Runs {@code inJvm} on io; when it declined (false, having touched nothing), runs {@code runc <command>}. */
    private Mono<Void> inJvm(String command, String id, Callable<Boolean> inJvm) {
        return Mono.fromCallable(() -> {
                    RuncCommandEvent event = new RuncCommandEvent(command, true, id);
                    event.begin();
                    boolean done = inJvm.call();
                    if (done) {
                        event.commit();
                    }
                    return done;
                })
                .subscribeOn(io)
                .onErrorMap(error -> !(error instanceof ShimmerException),
                        error -> TaskErrors.map("runc " + command + " (in the JVM) for", id, error))
                .flatMap(done -> done ? Mono.empty() : run(Stdio.NULL, command, id))
                .then();
    }

    public Mono<Void> kill(String id, int signal, boolean all) {
        return all ? run(Stdio.NULL, "kill", "--all", id, Integer.toString(signal)).then()
                : run(Stdio.NULL, "kill", id, Integer.toString(signal)).then();
    }

    public Mono<Void> delete(String id, boolean force) {
        return force ? run(Stdio.NULL, "delete", "--force", id).then() : run(Stdio.NULL, "delete", id).then();
    }

    public Mono<Void> pause(String id) {
        return run(Stdio.NULL, "pause", id).then();
    }

    public Mono<Void> resume(String id) {
        return run(Stdio.NULL, "resume", id).then();
    }

    /** {@code runc state}: runc's JSON view of the container. */
    public Mono<JsonNode> state(String id) {
        return output("state", id).map(Runc::parse);
    }

    /** {@code runc ps --format json}: the pids of the container. */
    public Mono<List<Integer>> pids(String id) {
        return output("ps", "--format", "json", id).map(json -> {
            List<Integer> pids = new ArrayList<>();
            parse(json).forEach(pid -> pids.add(pid.asInt()));
            return pids;
        });
    }

    /** {@code runc events --stats}: one JSON stats document. */
    public Mono<byte[]> stats(String id) {
        return output("events", "--stats", id);
    }

    /** {@code runc update --resources}: applies a JSON {@code LinuxResources}. */
    public Mono<Void> update(String id, byte[] linuxResources) {
        return Mono.fromCallable(() -> {
                    Path file = Files.createTempFile(bundle, ".resources", ".json");
                    Files.write(file, linuxResources);
                    return file;
                })
                .subscribeOn(io)
                .onErrorMap(error -> !(error instanceof ShimmerException),
                        error -> TaskErrors.map("write the resources for", id, error))
                .flatMap(file -> run(Stdio.NULL, "update", "--resources", file.toString(), id)
                        .doFinally(signal -> file.toFile().delete()))
                .then();
    }

    /** {@code runc checkpoint}. */
    public Mono<Void> checkpoint(String id, Path imagePath, boolean exit) {
        return exit ? run(Stdio.NULL, "checkpoint", "--image-path", imagePath.toString(), id).then()
                : run(Stdio.NULL, "checkpoint", "--leave-running", "--image-path", imagePath.toString(), id).then();
    }

    private Mono<byte[]> output(String... args) {
        return run(new Stdio(Stdio.NULL.in(), ProcessBuilder.Redirect.PIPE, ProcessBuilder.Redirect.DISCARD), args);
    }

    /** Runs one command to its end; returns what it printed when stdout is a pipe. */
    private Mono<byte[]> run(Stdio stdio, String... args) {
        return run(RuncInvocation.NEVER_CUT, stdio, args);
    }

    /** {@link #run(Stdio, String...)}, given to {@code cut} while it runs (see {@link RuncInvocation}). */
    private Mono<byte[]> run(Function<Runnable, Disposable> cut, Stdio stdio, String... args) {
        Path log = bundle.resolve("log.json");
        List<String> command = command(args);
        return Mono.defer(() -> {
                    long[] logStart = new long[1];
                    // The log's length, for the error: read in the task that launches runc, not in a hop of its own.
                    return RuncInvocation.run(args[0], bundle.getFileName().toString(), () -> {
                                logStart[0] = logLength(log);
                                return start(command, stdio);
                            }, io, cut)
                            .map(result -> {
                                if (result.exit() != 0) {
                                    throw failure(command, args, result.exit(), log, logStart[0]);
                                }
                                return result.printed();
                            });
                })
                .onErrorMap(error -> !(error instanceof ShimmerException),
                        error -> TaskErrors.map("runc " + args[0] + " for", bundle.toString(), error));
    }

    private static long logLength(Path log) {
        // 0 when absent: File.length says so without an exception.
        return log.toFile().length();
    }

    private Process start(List<String> command, Stdio stdio) {
        try {
            // posix_spawn from this thread, not the JDK's launch through jspawnhelper (issue 14).
            return SpawnedProcess.start(command, stdio.in(), stdio.out(), stdio.err());
        } catch (IOException e) {
            throw TaskErrors.classify("cannot run " + binary + ": " + e.getMessage(), e.getMessage(), e);
        }
    }

    /**
     * runc's own reason from its log, typed; blocking (it reads the log). A reason that names no known situation,
     * or no space without saying where, is checked against the file systems runc writes to: with its state root full
     * of blocks (inodes left), runc's create logs only "unable to store init state: %!w(<nil>)", an INTERNAL error.
     */
    private ShimmerException failure(List<String> command, String[] args, int exit, Path log, long logStart) {
        String reason = lastError(log, logStart)
                .map(logged -> TaskErrors.withFullFileSystem(logged, () -> fullFileSystem(args)))
                .or(() -> fullFileSystem(args).map(dir -> "exit status " + exit + "; no space left on device in "
                        + dir + " (runc could not log why)"))
                .orElse("exit status " + exit);
        // runc often starts its own message with "runc <command> failed: ".
        String message = reason.startsWith("runc " + args[0]) ? reason : "runc " + args[0] + " failed: " + reason;
        return TaskErrors.classify(message, reason,
                new IOException(String.join(" ", command) + " exited " + exit + ": " + reason));
    }

    /** The pid runc wrote; read on the io thread runc's exit was seen on. */
    private static int readPid(Path pidFile) {
        try {
            return Integer.parseInt(Files.readString(pidFile).strip());
        } catch (IOException | NumberFormatException e) {
            throw TaskErrors.map("read the pid file", pidFile.toString(), e);
        }
    }

    /**
     * A directory runc writes in (bundle and log, state root, pid file) whose file system has no block or inode
     * left. Asked only when runc failed without logging why: a full bundle file system takes its log with it
     * (issue 9: such a create said only "exit status 1").
     */
    private Optional<Path> fullFileSystem(String... args) {
        List<Path> written = new ArrayList<>(List.of(bundle, root));
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals("--pid-file")) {
                written.add(Path.of(args[i + 1]).getParent());
            }
        }
        return TaskErrors.fullFileSystem(written);
    }

    /** The last error runc logged after {@code start}, from its JSON log lines. */
    private static Optional<String> lastError(Path log, long start) {
        try (RandomAccessFile file = new RandomAccessFile(log.toFile(), "r")) {
            if (file.length() <= start) {
                return Optional.empty();
            }
            byte[] appended = new byte[(int) Math.min(file.length() - start, 1 << 20)];
            file.seek(start);
            file.readFully(appended);
            String message = null;
            for (String line : new String(appended, StandardCharsets.UTF_8).split("\n")) {
                try {
                    JsonNode entry = JSON.readTree(line);
                    if (entry != null && "error".equals(entry.path("level").asText())) {
                        message = entry.path("msg").asText();
                    }
                } catch (IOException notJson) {
                    // runc only writes JSON here; a torn line is skipped.
                }
            }
            return Optional.ofNullable(message);
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    private static JsonNode parse(byte[] json) {
        try {
            return JSON.readTree(json);
        } catch (IOException e) {
            throw new ShimException("runc printed something that is not JSON: " + e.getMessage(), e);
        }
    }
}
