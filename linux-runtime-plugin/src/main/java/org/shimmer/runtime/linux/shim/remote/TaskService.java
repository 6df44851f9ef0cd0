package org.shimmer.runtime.linux.shim.remote;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.protobuf.Empty;
import com.google.protobuf.InvalidProtocolBufferException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.linux.shim.ProcessStdio;
import org.shimmer.runtime.linux.shim.TaskEvents;
import org.shimmer.runtime.linux.shim.proto.CheckpointOptions;
import org.shimmer.runtime.linux.shim.proto.CheckpointTaskRequest;
import org.shimmer.runtime.linux.shim.proto.CloseIORequest;
import org.shimmer.runtime.linux.shim.proto.CreateTaskRequest;
import org.shimmer.runtime.linux.shim.proto.CreateTaskResponse;
import org.shimmer.runtime.linux.shim.proto.DeleteRequest;
import org.shimmer.runtime.linux.shim.proto.DeleteResponse;
import org.shimmer.runtime.linux.shim.proto.ExecProcessRequest;
import org.shimmer.runtime.linux.shim.proto.KillRequest;
import org.shimmer.runtime.linux.shim.proto.PauseRequest;
import org.shimmer.runtime.linux.shim.proto.PidsRequest;
import org.shimmer.runtime.linux.shim.proto.PidsResponse;
import org.shimmer.runtime.linux.shim.proto.ProcessDetails;
import org.shimmer.runtime.linux.shim.proto.ResizePtyRequest;
import org.shimmer.runtime.linux.shim.proto.ResumeRequest;
import org.shimmer.runtime.linux.shim.proto.StartRequest;
import org.shimmer.runtime.linux.shim.proto.StartResponse;
import org.shimmer.runtime.linux.shim.proto.StateRequest;
import org.shimmer.runtime.linux.shim.proto.StateResponse;
import org.shimmer.runtime.linux.shim.proto.StatsRequest;
import org.shimmer.runtime.linux.shim.proto.StatsResponse;
import org.shimmer.runtime.linux.shim.proto.UpdateTaskRequest;
import org.shimmer.runtime.linux.shim.proto.WaitRequest;
import org.shimmer.runtime.linux.shim.proto.WaitResponse;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.ProcessInfo;
import org.shimmer.runtime.shim.Stats;
import org.shimmer.runtime.shim.TaskState;
import org.shimmer.runtime.shim.TerminalSize;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * The task API of one task, typed: each method builds its request from the shim contract's types, calls it through
 * the session (which names the action and task in any failure) and reads the answer back into those types.
 */
final class TaskService {

    static final String PROCESS_SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Process";
    static final String RESOURCES_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

    /**
     * How long a Create may take. Long: a Create that times out is followed by the shim's own delete (runc delete
     * --force), and one that merely ran slow on a loaded machine must not lose the container it was making.
     */
    static final Duration CREATE_TIMEOUT = Duration.ofMinutes(2);
    /** How long a created init killed before its delete may take to be reported gone by the shim. */
    static final Duration KILLED_EXIT_TIMEOUT = Duration.ofSeconds(5);

    private final ShimSession session;
    private final String id;

    TaskService(ShimSession session, String id) {
        this.session = session;
        this.id = id;
    }

    /** Create, its failure as the shim gave it (the caller classifies it: it decides what to undo). */
    Mono<CreateTaskResponse> create(Path bundle, CreateOptions options, ProcessStdio stdio, Any runc) {
        return session.rawCall("Create", create(id, bundle, options, stdio, runc), CreateTaskResponse.parser(),
                session.callOptions().withTimeout(CREATE_TIMEOUT));
    }

    /** Fails with {@link AlreadyExistsException} unless the shim answers that it has no such task. */
    Mono<Void> requireAbsent(String task) {
        return state("")
                .flatMap(found -> Mono.<Void>error(new AlreadyExistsException("create " + task
                        + ": the shim already has it (" + found.status() + ", pid " + found.pid() + ")")))
                .onErrorResume(NotFoundException.class, absent -> Mono.empty());
    }

    /** Start; the pid. */
    Mono<Integer> start(String action, String execId) {
        return session.call(action, "Start", StartRequest.newBuilder().setId(id).setExecId(execId).build(),
                StartResponse.parser()).map(StartResponse::getPid);
    }

    /** Wait: the exit (its pid unknown to the shim's answer: 0). */
    Mono<ExitStatus> waitFor(String execId) {
        return session.call("wait for", "Wait", WaitRequest.newBuilder().setId(id).setExecId(execId).build(),
                        WaitResponse.parser())
                .map(exited -> new ExitStatus(0, exited.getExitStatus(), TaskEvents.instant(exited.getExitedAt())));
    }

    Mono<Void> kill(String action, String execId, int signal, boolean all) {
        return session.call(action, "Kill", KillRequest.newBuilder().setId(id).setExecId(execId).setSignal(signal)
                .setAll(all).build(), Empty.parser()).then();
    }

    /**
     * Delete of the init task; one the shim itself says is created (never started) is killed first. The runc shim
     * waits up to 2 s in Delete for the copying of init's output to end, which for a created init (it holds its
     * pipes) happens only once it is dead: every delete of a created task took 2 s. Only the shim's word counts
     * (another client may have started it), and it is asked unless {@code mayBeCreated} is false (the caller saw
     * its own Start succeed): asking cost a round trip on every delete. A created exec has no process yet: nothing
     * to kill.
     */
    Mono<DeleteResponse> deleteInit(String action, boolean mayBeCreated) {
        if (!mayBeCreated) {
            return delete(action, "");
        }
        // Delete right after the Kill answered with the exit the shim had recorded by then, usually none yet (0),
        // while its event said 137: Wait first, which answers once the shim has the exit.
        Mono<Void> killIfCreated = state("")
                .filter(found -> found.status() == TaskState.Status.CREATED)
                // A Kill that fails (init died on its own, its exit not yet the shim's) still waits for the exit.
                .flatMap(created -> kill("kill", "", 9, false).onErrorResume(error -> Mono.empty()).then(session.call(
                        "wait for", "Wait",
                        WaitRequest.newBuilder().setId(id).setExecId("").build(), WaitResponse.parser(),
                        session.callOptions().withTimeout(KILLED_EXIT_TIMEOUT))))
                .onErrorResume(error -> Mono.empty())
                .then();
        return killIfCreated.then(delete(action, ""));
    }

    Mono<DeleteResponse> delete(String action, String execId) {
        return session.call(action, "Delete", DeleteRequest.newBuilder().setId(id).setExecId(execId).build(),
                DeleteResponse.parser());
    }

    Mono<TaskState> state(String execId) {
        return state("get state of", execId);
    }

    /** The state, its failure named as {@code action}'s: the first step of another operation. */
    Mono<TaskState> state(String action, String execId) {
        return session.call(action, "State", StateRequest.newBuilder().setId(id).setExecId(execId).build(),
                StateResponse.parser()).map(state -> taskState(id, execId, state));
    }

    Flux<ProcessInfo> pids() {
        return session.call("list processes of", "Pids", PidsRequest.newBuilder().setId(id).build(),
                        PidsResponse.parser())
                .flatMapIterable(PidsResponse::getProcessesList)
                .map(process -> new ProcessInfo(process.getPid(), execIdOf(process.getInfo())));
    }

    Mono<Void> exec(String action, String execId, byte[] spec, ProcessStdio stdio) {
        return session.call(action, "Exec", ExecProcessRequest.newBuilder()
                .setId(id).setExecId(execId)
                .setStdin(stdio.stdin()).setStdout(stdio.stdout()).setStderr(stdio.stderr())
                .setTerminal(stdio.isTerminal())
                .setSpec(Any.newBuilder().setTypeUrl(PROCESS_SPEC_TYPE).setValue(ByteString.copyFrom(spec)))
                .build(), Empty.parser()).then();
    }

    /**
     * ResizePty. The runc shim answers it for a process without a console with success and no effect: the caller
     * checks {@link #rawState} first.
     */
    Mono<Void> resizePty(String action, String execId, TerminalSize size) {
        return session.call(action, "ResizePty", ResizePtyRequest.newBuilder().setId(id).setExecId(execId)
                .setWidth(size.width()).setHeight(size.height()).build(), Empty.parser()).then();
    }

    /** State as the shim answers it, for what {@link TaskState} does not carry (whether there is a terminal). */
    Mono<StateResponse> rawState(String action, String execId) {
        return session.call(action, "State", StateRequest.newBuilder().setId(id).setExecId(execId).build(),
                StateResponse.parser());
    }

    Mono<Void> closeStdin(String execId) {
        return session.call("close stdin of", "CloseIO", CloseIORequest.newBuilder().setId(id).setExecId(execId)
                .setStdin(true).build(), Empty.parser()).then();
    }

    Mono<Void> pause() {
        return session.call("pause", "Pause", PauseRequest.newBuilder().setId(id).build(), Empty.parser()).then();
    }

    Mono<Void> resume() {
        return session.call("resume", "Resume", ResumeRequest.newBuilder().setId(id).build(), Empty.parser()).then();
    }

    Mono<Void> update(byte[] linuxResources) {
        return session.call("update", "Update", UpdateTaskRequest.newBuilder().setId(id)
                .setResources(Any.newBuilder().setTypeUrl(RESOURCES_TYPE).setValue(ByteString.copyFrom(linuxResources)))
                .build(), Empty.parser()).then();
    }

    Mono<Stats> stats() {
        return session.call("get stats of", "Stats", StatsRequest.newBuilder().setId(id).build(),
                        StatsResponse.parser())
                .map(stats -> new Stats(stats.getStats().getTypeUrl(), stats.getStats().getValue().toByteArray()));
    }

    Mono<Void> checkpoint(Path imagePath, boolean exit) {
        Any options = Any.newBuilder().setTypeUrl("containerd.runc.v1.CheckpointOptions")
                .setValue(CheckpointOptions.newBuilder().setExit(exit).setImagePath(imagePath.toString()).build()
                        .toByteString())
                .build();
        return session.call("checkpoint", "Checkpoint", CheckpointTaskRequest.newBuilder().setId(id)
                .setPath(imagePath.toString()).setOptions(options).build(), Empty.parser()).then();
    }

    private static CreateTaskRequest create(String id, Path bundle, CreateOptions options, ProcessStdio stdio, Any runc) {
        CreateTaskRequest.Builder request = CreateTaskRequest.newBuilder()
                .setId(id)
                .setBundle(bundle.toString())
                .setStdin(stdio.stdin())
                .setStdout(stdio.stdout())
                .setStderr(stdio.stderr())
                .setTerminal(stdio.isTerminal())
                .setOptions(runc);
        for (Mount mount : options.rootfs()) {
            request.addRootfs(org.shimmer.runtime.linux.shim.proto.Mount.newBuilder()
                    .setType(mount.type()).setSource(mount.source()).addAllOptions(mount.options()));
        }
        return request.build();
    }

    /** The exec id a Pids answer attaches to a process, or "" for init and anything else. */
    private static String execIdOf(Any info) {
        if (!info.getTypeUrl().equals("containerd.runc.v1.ProcessDetails")) {
            return "";
        }
        try {
            return ProcessDetails.parseFrom(info.getValue()).getExecId();
        } catch (InvalidProtocolBufferException e) {
            return "";
        }
    }

    static TaskState taskState(String id, String execId, StateResponse state) {
        TaskState.Status status = switch (state.getStatus()) {
            case CREATED -> TaskState.Status.CREATED;
            case RUNNING -> TaskState.Status.RUNNING;
            case STOPPED -> TaskState.Status.STOPPED;
            case PAUSED -> TaskState.Status.PAUSED;
            case PAUSING -> TaskState.Status.PAUSING;
            default -> TaskState.Status.UNKNOWN;
        };
        Optional<Instant> exitedAt = state.hasExitedAt() ? TaskEvents.exitedAt(state.getExitedAt())
                : Optional.empty();
        // The shim answers an exec's State with its exec id as id and no exec id; TaskState's id is the container's.
        return new TaskState(id, execId, state.getPid(), status, state.getExitStatus(), exitedAt);
    }
}
