package org.shimmer.runtime.linux.shim.local;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.bundle.Specs;
import org.shimmer.runtime.linux.poll.ExitMonitor;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.runc.Runc;
import org.shimmer.runtime.linux.shim.ProcessStdio;
import org.shimmer.runtime.linux.shim.TaskErrors;
import org.shimmer.runtime.linux.shim.TaskEvents;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ProcessInfo;
import org.shimmer.runtime.shim.ProcessIo;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.Stats;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * The shim contract implemented in the JVM: drives {@code runc} itself, learns exits from the
 * {@link ExitMonitor}, and publishes containerd's task events, with the same topics and payloads, straight into
 * the host's {@link EventExchange}.
 *
 * <p>Invariants: a process's exit event is published only after its start event; an exec cannot start once init
 * has exited; a failure after {@code runc create} removes the created container; wait and delete complete only
 * after the output someone subscribed to was drained.
 */
final class LocalShimClient implements ShimClient {

    static final String STATS_TYPE = "application/vnd.runc.stats+json";
    static final Duration DRAIN_TIMEOUT = Duration.ofSeconds(5);

    private static final Logger log = LoggerFactory.getLogger(LocalShimClient.class);

    private final Bundle bundle;
    private final Runc runc;
    private final RuntimeResources resources;
    private final ExitMonitor monitor;
    private final EventExchange exchange;
    private final Runnable forget;
    private final Map<String, LocalProcess> execs = new ConcurrentHashMap<>();
    private volatile LocalProcess init;
    private final AtomicBoolean creating = new AtomicBoolean();
    private volatile ExitMonitor.Launch createLaunch;

    LocalShimClient(Bundle bundle, Runc runc, RuntimeResources resources, ExitMonitor monitor,
            EventExchange exchange, Runnable forget) {
        this.bundle = bundle;
        this.runc = runc;
        this.resources = resources;
        this.monitor = monitor;
        this.exchange = exchange;
        this.forget = forget;
    }

    @Override
    public String id() {
        return bundle.id();
    }

    @Override
    public String namespace() {
        return bundle.namespace();
    }

    @Override
    public Mono<ProcessIo> create(CreateOptions options) {
        return Mono.defer(() -> {
            // Claimed before any work, so a racing create fails here instead of undoing the winner's container.
            if (init != null || !creating.compareAndSet(false, true)) {
                return Mono.error(new AlreadyExistsException("create " + task() + ": already exists"));
            }
            return blocking(() -> {
                        ProcessStdio stdio = ProcessStdio.prepare(options.stdio(), ioDir(), id(), resources.poller(),
                                resources.io());
                        try {
                            RootfsMounts.mount(options.rootfs(), bundle.rootfs(), bundle.workDir());
                        } catch (IOException | RuntimeException e) {
                            stdio.release();
                            throw e;
                        }
                        createLaunch = monitor.launch();
                        return stdio;
                    })
                    .flatMap(stdio -> runc.create(id(), bundle.workDir().resolve("init.pid"), redirects(stdio))
                            .doFinally(signal -> stdio.launched())
                            .flatMap(pid -> blocking(() -> {
                                LocalProcess process = new LocalProcess(INIT, stdio);
                                process.pid = pid;
                                monitor.watch(pid).subscribe(process::exited, process::unwatched);
                                new LocalRecord(pid, false).write(bundle.workDir());
                                init = process;
                                return process;
                            }))
                            .doFinally(signal -> createLaunch.close())
                            .onErrorResume(error -> undoCreate(stdio).then(Mono.error(error))))
                    .doOnError(error -> creating.set(false))
                    .flatMap(process -> publish(new TaskEvent.TaskCreate(id(), bundle.path().toString(),
                                    options.rootfs().stream().map(m -> new TaskEvent.TaskMount(m.type(), m.source(),
                                            m.options())).toList(), process.pid))
                            .then(Mono.fromCallable(() -> {
                                process.stdio.startStdin(() -> {});
                                return process.stdio.io(process.pid);
                            })));
        }).onErrorMap(error -> map("create", error));
    }

    /** After a failed create: remove the container runc may have made, the mounts and the FIFOs. */
    private Mono<Void> undoCreate(ProcessStdio stdio) {
        return runc.delete(id(), true).onErrorResume(error -> Mono.empty())
                .then(blocking(() -> {
                    stdio.release();
                    unmountRootfs();
                    return true;
                }))
                .then();
    }

    @Override
    public Mono<Integer> start(String execId) {
        return execId.isEmpty() ? startInit() : startExec(execId);
    }

    private Mono<Integer> startInit() {
        return Mono.defer(() -> {
            LocalProcess process = requireInit();
            if (!process.startRequested.compareAndSet(false, true)) {
                return Mono.error(new FailedPreconditionException("start " + task() + ": already started"));
            }
            return runc.start(id())
                    .then(blocking(() -> {
                        new LocalRecord(process.pid, true).write(bundle.workDir());
                        return process.pid;
                    }))
                    .flatMap(pid -> publish(new TaskEvent.TaskStart(id(), pid)).thenReturn(pid))
                    .doOnSuccess(pid -> publishExitAfterStart(process));
        }).onErrorMap(error -> map("start", error));
    }

    private Mono<Integer> startExec(String execId) {
        return Mono.defer(() -> {
            LocalProcess init = requireInit();
            LocalProcess exec = execs.get(execId);
            if (exec == null) {
                return Mono.error(new NotFoundException("start exec " + execId + " in " + task() + ": not found"));
            }
            // containerd #10651: an exec must not start once init has exited (its namespaces are going away).
            if (init.hasExited()) {
                return Mono.error(new FailedPreconditionException("start exec " + execId + " in " + task()
                        + ": the container is not running"));
            }
            if (!exec.startRequested.compareAndSet(false, true)) {
                return Mono.error(new FailedPreconditionException("start exec " + execId + " in " + task()
                        + ": already started"));
            }
            ExitMonitor.Launch launch = monitor.launch();
            return runc.exec(id(), execSpec(execId), bundle.workDir().resolve("exec-" + execId + ".pid"),
                            redirects(exec.stdio))
                    .doFinally(signal -> exec.stdio.launched())
                    .flatMap(pid -> blocking(() -> {
                        exec.pid = pid;
                        monitor.watch(pid).subscribe(exec::exited, exec::unwatched);
                        return pid;
                    }))
                    .doFinally(signal -> launch.close())
                    .flatMap(pid -> publish(new TaskEvent.TaskExecStarted(id(), execId, pid)).thenReturn(pid))
                    .doOnSuccess(pid -> {
                        // Only now does the process hold the stdin FIFO's read end: start feeding it.
                        exec.stdio.startStdin(() -> {});
                        publishExitAfterStart(exec);
                    });
        }).onErrorMap(error -> map("start exec " + execId + " in", error));
    }

    /** Publishes the exit once it happened; called only after the start event went out. */
    private void publishExitAfterStart(LocalProcess process) {
        process.running = true;
        process.awaitExit()
                .flatMap(exit -> publish(new TaskEvent.TaskExit(id(), process.execId.isEmpty() ? id()
                        : process.execId, exit.pid(), exit.status(), exit.exitedAt())))
                .subscribe(done -> {}, error -> {
                    if (error instanceof UnavailableException) {
                        log.debug("{}: {}", task(), error.getMessage());
                    } else {
                        log.warn("could not publish the exit of {}", task(), error);
                    }
                });
    }

    @Override
    public Mono<ExitStatus> awaitExit(String execId) {
        return Mono.defer(() -> {
                    LocalProcess process = process(execId);
                    return process.awaitExit().flatMap(exit -> process.outputEnded(DRAIN_TIMEOUT).thenReturn(exit));
                })
                .onErrorMap(error -> map("wait for", error));
    }

    @Override
    public Mono<Void> kill(int signal, boolean all) {
        return Mono.defer(() -> {
            requireInit();
            return runc.kill(id(), signal, all);
        }).onErrorMap(error -> map("kill", error));
    }

    @Override
    public Mono<Void> kill(String execId, int signal) {
        return Mono.defer(() -> {
            LocalProcess process = process(execId);
            if (process.pid == 0 || process.hasExited()) {
                return Mono.error(new NotFoundException("kill " + execId + " in " + task()
                        + ": process already finished: not found"));
            }
            return blocking(() -> {
                if (!monitor.signal(process.pid, signal)) {
                    throw new NotFoundException("kill " + execId + " in " + task()
                            + ": process already finished: not found");
                }
                return true;
            }).then();
        }).onErrorMap(error -> map("kill", error));
    }

    @Override
    public Mono<ExitStatus> delete(String execId) {
        return execId.isEmpty() ? deleteInit() : deleteExec(execId);
    }

    private Mono<ExitStatus> deleteInit() {
        return Mono.defer(() -> {
            LocalProcess process = requireInit();
            if (process.running && !process.hasExited()) {
                return Mono.error(new FailedPreconditionException("delete " + task()
                        + ": cannot delete a running process"));
            }
            // A created, never started init is killed by the forced delete; its exit then arrives as usual.
            return runc.delete(id(), !process.hasExited())
                    .then(process.awaitExit())
                    .flatMap(exit -> process.drained(DRAIN_TIMEOUT).thenReturn(exit))
                    .flatMap(exit -> blocking(() -> {
                        unmountRootfs();
                        LocalRecord.remove(bundle.workDir());
                        Files.deleteIfExists(bundle.workDir().resolve("init.pid"));
                        return exit;
                    }))
                    .flatMap(exit -> publish(new TaskEvent.TaskDelete(id(), exit.pid(), exit.status(),
                            exit.exitedAt())).thenReturn(exit))
                    .flatMap(exit -> blocking(() -> {
                        // Execs never deleted go with their container: release their FIFOs too.
                        for (LocalProcess exec : execs.values()) {
                            exec.stdio.release();
                        }
                        execs.clear();
                        removeOrphanedFifos();
                        init = null;
                        creating.set(false);
                        return exit;
                    }));
        }).onErrorMap(error -> map("delete", error));
    }

    private Mono<ExitStatus> deleteExec(String execId) {
        return Mono.defer(() -> {
            LocalProcess exec = process(execId);
            if (exec.pid != 0 && !exec.hasExited()) {
                return Mono.error(new FailedPreconditionException("delete exec " + execId + " in " + task()
                        + ": cannot delete a running process"));
            }
            Mono<ExitStatus> exit = exec.hasExited() ? exec.awaitExit()
                    : Mono.just(new ExitStatus(0, 0, Instant.now()));
            return exit.flatMap(status -> exec.drained(DRAIN_TIMEOUT).thenReturn(status))
                    .flatMap(status -> blocking(() -> {
                        execs.remove(execId);
                        Files.deleteIfExists(execSpec(execId));
                        Files.deleteIfExists(bundle.workDir().resolve("exec-" + execId + ".pid"));
                        return status;
                    }));
        }).onErrorMap(error -> map("delete exec " + execId + " in", error));
    }

    @Override
    public Mono<TaskState> state(String execId) {
        return Mono.defer(() -> {
            if (!execId.isEmpty()) {
                LocalProcess exec = process(execId);
                TaskState.Status status = exec.hasExited() ? TaskState.Status.STOPPED
                        : exec.pid == 0 ? TaskState.Status.CREATED : TaskState.Status.RUNNING;
                return Mono.just(state(exec, status));
            }
            LocalProcess process = requireInit();
            if (process.hasExited()) {
                return Mono.just(state(process, TaskState.Status.STOPPED));
            }
            return runc.state(id()).map(json -> state(process, status(json)));
        }).onErrorMap(error -> map("get state of", error));
    }

    @Override
    public Flux<ProcessInfo> pids() {
        return Mono.defer(() -> {
                    requireInit();
                    return runc.pids(id());
                })
                .flatMapIterable(pids -> pids)
                .map(pid -> new ProcessInfo(pid, execs.values().stream().filter(exec -> exec.pid == pid)
                        .map(exec -> exec.execId).findFirst().orElse("")))
                .onErrorMap(error -> map("list processes of", error));
    }

    @Override
    public Mono<ProcessIo> exec(String execId, byte[] processSpec, Stdio stdio) {
        return Mono.defer(() -> {
            // Before any path is built from the id: "../x" would name a file outside the work directory.
            Identifiers.requireValid("exec id", execId);
            Specs.requireJsonObject("exec " + execId + " in " + task(), processSpec);
            requireInit();
            if (execs.containsKey(execId)) {
                return Mono.error(new AlreadyExistsException("exec " + execId + " in " + task()
                        + ": already exists"));
            }
            return blocking(() -> {
                LocalProcess exec = new LocalProcess(execId, ProcessStdio.prepare(stdio, ioDir(), execId,
                        resources.poller(), resources.io()));
                // Reserved before its spec file is written, so a racing exec of the same id never overwrites it.
                if (execs.putIfAbsent(execId, exec) != null) {
                    exec.stdio.release();
                    throw new AlreadyExistsException("exec " + execId + " in " + task() + ": already exists");
                }
                try {
                    Files.write(execSpec(execId), processSpec);
                } catch (IOException | RuntimeException e) {
                    execs.remove(execId, exec);
                    exec.stdio.release();
                    Files.deleteIfExists(execSpec(execId));
                    throw e;
                }
                return exec;
            }).flatMap(exec -> publish(new TaskEvent.TaskExecAdded(id(), execId))
                    .then(Mono.fromCallable(() -> exec.stdio.io(0))));
        }).onErrorMap(error -> map("exec " + execId + " in", error));
    }

    @Override
    public Mono<Void> closeIo(String execId) {
        return Mono.fromRunnable(() -> {
                    LocalProcess process = process(execId);
                    if (process.stdio != null) {
                        process.stdio.closeStdin();
                    }
                })
                .onErrorMap(error -> map("close stdin of", error)).then();
    }

    @Override
    public Mono<Void> pause() {
        return Mono.defer(() -> {
            requireInit();
            return runc.pause(id()).then(publish(new TaskEvent.TaskPaused(id())));
        }).onErrorMap(error -> map("pause", error));
    }

    @Override
    public Mono<Void> resume() {
        return Mono.defer(() -> {
            requireInit();
            return runc.resume(id()).then(publish(new TaskEvent.TaskResumed(id())));
        }).onErrorMap(error -> map("resume", error));
    }

    @Override
    public Mono<Void> update(byte[] linuxResources) {
        return Mono.defer(() -> {
            requireInit();
            return runc.update(id(), linuxResources);
        }).onErrorMap(error -> map("update", error));
    }

    @Override
    public Mono<Stats> stats() {
        return Mono.defer(() -> {
            requireInit();
            return runc.stats(id()).map(json -> new Stats(STATS_TYPE, json));
        }).onErrorMap(error -> map("get stats of", error));
    }

    @Override
    public Mono<Void> checkpoint(Path imagePath, boolean exit) {
        return Mono.defer(() -> {
            requireInit();
            return runc.checkpoint(id(), imagePath, exit);
        }).onErrorMap(error -> map("checkpoint", error));
    }

    @Override
    public Mono<Void> shutdown() {
        return Mono.defer(() -> {
            if (init != null) {
                return Mono.error(new FailedPreconditionException("shutdown " + task()
                        + ": the task still exists; delete it first"));
            }
            forget.run();
            return Mono.empty();
        });
    }

    @Override
    public Mono<Void> close() {
        // Nothing to disconnect: the container stays watched by this runtime, and a later client finds it.
        return Mono.empty();
    }

    @Override
    public Flux<Envelope> events() {
        return TaskEvents.of(exchange, namespace(), id());
    }

    /** After a restart: watches an init found on disk again and reports its exit once, when it comes. */
    void recover(int pid, boolean started) {
        LocalProcess process = new LocalProcess(INIT, null);
        process.pid = pid;
        process.startRequested.set(started);
        creating.set(true);
        init = process;
        try {
            monitor.watch(pid).subscribe(process::exited, process::unwatched);
        } catch (IOException gone) {
            // It exited and was reaped elsewhere (the JVM that was its parent is gone): the status is lost.
            log.warn("local task {} (pid {}) ended while no runtime watched it; reporting exit 137", task(), pid);
            process.exited(new ExitStatus(pid, 137, Instant.now()));
        }
        if (started) {
            publishExitAfterStart(process);
        }
    }

    private LocalProcess requireInit() {
        LocalProcess process = init;
        if (process == null) {
            throw new NotFoundException(task() + ": container not created: not found");
        }
        return process;
    }

    private LocalProcess process(String execId) {
        if (execId.isEmpty()) {
            return requireInit();
        }
        LocalProcess exec = execs.get(execId);
        if (exec == null) {
            throw new NotFoundException("exec " + execId + " in " + task() + ": not found");
        }
        return exec;
    }

    private TaskState state(LocalProcess process, TaskState.Status status) {
        ExitStatus exit = process.exited;
        return new TaskState(id(), process.execId, process.pid, status, exit != null ? exit.status() : 0,
                exit != null ? Optional.of(exit.exitedAt()) : Optional.empty());
    }

    private static TaskState.Status status(JsonNode state) {
        return switch (state.path("status").asText()) {
            case "created" -> TaskState.Status.CREATED;
            case "running" -> TaskState.Status.RUNNING;
            case "paused" -> TaskState.Status.PAUSED;
            case "pausing" -> TaskState.Status.PAUSING;
            case "stopped" -> TaskState.Status.STOPPED;
            default -> TaskState.Status.UNKNOWN;
        };
    }

    private Mono<Void> publish(TaskEvent event) {
        return exchange.publish(namespace(), event.topic(), event);
    }

    private Runc.Stdio redirects(ProcessStdio stdio) {
        if (stdio == null) {
            return Runc.Stdio.NULL;
        }
        ProcessBuilder.Redirect in = stdio.stdin().isEmpty() ? Runc.Stdio.NULL.in()
                : ProcessBuilder.Redirect.from(Path.of(stdio.stdin()).toFile());
        return new Runc.Stdio(in, output(stdio, stdio.stdout()), output(stdio, stdio.stderr()));
    }

    private static ProcessBuilder.Redirect output(ProcessStdio stdio, String path) {
        if (path.isEmpty()) {
            return ProcessBuilder.Redirect.DISCARD;
        }
        return stdio.isFiles() ? ProcessBuilder.Redirect.appendTo(Path.of(path).toFile())
                : ProcessBuilder.Redirect.to(Path.of(path).toFile());
    }

    private void unmountRootfs() throws IOException {
        RootfsMounts.unmount(bundle.rootfs(), bundle.workDir());
    }

    /**
     * Removes the FIFOs no process of this client owns: those of processes a runtime before a reload started
     * (their streams died with it). Only FIFOs, never following a link.
     */
    private void removeOrphanedFifos() throws IOException {
        Path io = ioDir();
        if (!Files.isDirectory(io, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(io)) {
            for (Path entry : entries) {
                if (Files.readAttributes(entry, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).isOther()) {
                    Files.deleteIfExists(entry);
                }
            }
        }
    }

    private Path execSpec(String execId) {
        return bundle.workDir().resolve("exec-" + execId + ".json");
    }

    private Path ioDir() {
        return bundle.workDir().resolve("io");
    }

    private String task() {
        return "task " + namespace() + "/" + id();
    }

    private <T> Mono<T> blocking(Callable<T> work) {
        return Mono.fromCallable(work).subscribeOn(resources.io());
    }

    /** Errors name the action and the task, as the remote shim's do: "start task ns/id: <why>". */
    private Throwable map(String action, Throwable error) {
        return TaskErrors.map(action, task(), error);
    }
}
