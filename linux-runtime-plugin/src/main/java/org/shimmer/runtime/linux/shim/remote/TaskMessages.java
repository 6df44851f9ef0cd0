package org.shimmer.runtime.linux.shim.remote;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Optional;
import org.shimmer.runtime.linux.shim.ProcessStdio;
import org.shimmer.runtime.linux.shim.TaskEvents;
import org.shimmer.runtime.linux.shim.proto.CheckpointOptions;
import org.shimmer.runtime.linux.shim.proto.CheckpointTaskRequest;
import org.shimmer.runtime.linux.shim.proto.CreateTaskRequest;
import org.shimmer.runtime.linux.shim.proto.ExecProcessRequest;
import org.shimmer.runtime.linux.shim.proto.ProcessDetails;
import org.shimmer.runtime.linux.shim.proto.StateResponse;
import org.shimmer.runtime.linux.shim.proto.UpdateTaskRequest;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.TaskState;

/** The task API's messages, built from and read into the shim contract's types. */
final class TaskMessages {

    static final String PROCESS_SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Process";
    static final String RESOURCES_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

    private TaskMessages() {}

    static CreateTaskRequest create(String id, Path bundle, CreateOptions options, ProcessStdio stdio, Any runc) {
        CreateTaskRequest.Builder request = CreateTaskRequest.newBuilder()
                .setId(id)
                .setBundle(bundle.toString())
                .setStdin(stdio.stdin())
                .setStdout(stdio.stdout())
                .setStderr(stdio.stderr())
                .setOptions(runc);
        for (Mount mount : options.rootfs()) {
            request.addRootfs(org.shimmer.runtime.linux.shim.proto.Mount.newBuilder()
                    .setType(mount.type()).setSource(mount.source()).addAllOptions(mount.options()));
        }
        return request.build();
    }

    static ExecProcessRequest exec(String id, String execId, byte[] spec, ProcessStdio stdio) {
        return ExecProcessRequest.newBuilder()
                .setId(id).setExecId(execId)
                .setStdin(stdio.stdin()).setStdout(stdio.stdout()).setStderr(stdio.stderr())
                .setSpec(Any.newBuilder().setTypeUrl(PROCESS_SPEC_TYPE).setValue(ByteString.copyFrom(spec)))
                .build();
    }

    static UpdateTaskRequest update(String id, byte[] linuxResources) {
        return UpdateTaskRequest.newBuilder().setId(id)
                .setResources(Any.newBuilder().setTypeUrl(RESOURCES_TYPE).setValue(ByteString.copyFrom(linuxResources)))
                .build();
    }

    static CheckpointTaskRequest checkpoint(String id, Path imagePath, boolean exit) {
        Any options = Any.newBuilder().setTypeUrl("containerd.runc.v1.CheckpointOptions")
                .setValue(CheckpointOptions.newBuilder().setExit(exit).setImagePath(imagePath.toString()).build()
                        .toByteString())
                .build();
        return CheckpointTaskRequest.newBuilder().setId(id).setPath(imagePath.toString()).setOptions(options).build();
    }

    /** The exec id a Pids answer attaches to a process, or "" for init and anything else. */
    static String execIdOf(Any info) {
        if (!info.getTypeUrl().equals("containerd.runc.v1.ProcessDetails")) {
            return "";
        }
        try {
            return ProcessDetails.parseFrom(info.getValue()).getExecId();
        } catch (InvalidProtocolBufferException e) {
            return "";
        }
    }

    static TaskState taskState(StateResponse state) {
        TaskState.Status status = switch (state.getStatus()) {
            case CREATED -> TaskState.Status.CREATED;
            case RUNNING -> TaskState.Status.RUNNING;
            case STOPPED -> TaskState.Status.STOPPED;
            case PAUSED -> TaskState.Status.PAUSED;
            case PAUSING -> TaskState.Status.PAUSING;
            default -> TaskState.Status.UNKNOWN;
        };
        Optional<Instant> exitedAt = state.hasExitedAt()
                && state.getExitedAt().getSeconds() != TaskEvents.GO_ZERO_TIME_SECONDS
                ? Optional.of(TaskEvents.instant(state.getExitedAt())) : Optional.empty();
        return new TaskState(state.getId(), state.getExecId(), state.getPid(), status, state.getExitStatus(),
                exitedAt);
    }
}
