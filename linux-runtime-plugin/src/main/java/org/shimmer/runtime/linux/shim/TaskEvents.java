package org.shimmer.runtime.linux.shim;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Timestamp;
import java.time.DateTimeException;
import java.time.Instant;
import java.util.Optional;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.EventFilter;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.shim.proto.ForwardRequest;
import org.shimmer.runtime.linux.shim.proto.Mount;
import org.shimmer.runtime.linux.shim.proto.TaskCreate;
import org.shimmer.runtime.linux.shim.proto.TaskDelete;
import org.shimmer.runtime.linux.shim.proto.TaskExecAdded;
import org.shimmer.runtime.linux.shim.proto.TaskExecStarted;
import org.shimmer.runtime.linux.shim.proto.TaskExit;
import org.shimmer.runtime.linux.shim.proto.TaskOOM;
import org.shimmer.runtime.linux.shim.proto.TaskPaused;
import org.shimmer.runtime.linux.shim.proto.TaskResumed;
import org.shimmer.runtime.linux.shim.proto.TaskStart;
import reactor.core.publisher.Flux;

/** containerd's task event messages, as the API's plain {@link TaskEvent} values. */
public final class TaskEvents {

    /** Go's zero time, which shims send for "has not exited". */
    public static final long GO_ZERO_TIME_SECONDS = -62135596800L;

    private TaskEvents() {}

    /** Decodes an event by its type url; empty for types this runtime does not model. */
    public static Optional<TaskEvent> decode(Any event) throws InvalidProtocolBufferException {
        return Optional.ofNullable(switch (event.getTypeUrl()) {
            case "containerd.events.TaskCreate" -> {
                TaskCreate create = TaskCreate.parseFrom(event.getValue());
                yield new TaskEvent.TaskCreate(create.getContainerId(), create.getBundle(),
                        create.getRootfsList().stream().map(TaskEvents::mount).toList(), create.getPid());
            }
            case "containerd.events.TaskStart" -> {
                TaskStart start = TaskStart.parseFrom(event.getValue());
                yield new TaskEvent.TaskStart(start.getContainerId(), start.getPid());
            }
            case "containerd.events.TaskExit" -> {
                TaskExit exit = TaskExit.parseFrom(event.getValue());
                yield new TaskEvent.TaskExit(exit.getContainerId(), exit.getId(), exit.getPid(),
                        exit.getExitStatus(), instant(exit.getExitedAt()));
            }
            case "containerd.events.TaskDelete" -> {
                TaskDelete delete = TaskDelete.parseFrom(event.getValue());
                yield new TaskEvent.TaskDelete(delete.getContainerId(), delete.getPid(), delete.getExitStatus(),
                        instant(delete.getExitedAt()));
            }
            case "containerd.events.TaskExecAdded" -> {
                TaskExecAdded added = TaskExecAdded.parseFrom(event.getValue());
                yield new TaskEvent.TaskExecAdded(added.getContainerId(), added.getExecId());
            }
            case "containerd.events.TaskExecStarted" -> {
                TaskExecStarted started = TaskExecStarted.parseFrom(event.getValue());
                yield new TaskEvent.TaskExecStarted(started.getContainerId(), started.getExecId(), started.getPid());
            }
            case "containerd.events.TaskPaused" ->
                    new TaskEvent.TaskPaused(TaskPaused.parseFrom(event.getValue()).getContainerId());
            case "containerd.events.TaskResumed" ->
                    new TaskEvent.TaskResumed(TaskResumed.parseFrom(event.getValue()).getContainerId());
            case "containerd.events.TaskOOM" ->
                    new TaskEvent.TaskOom(TaskOOM.parseFrom(event.getValue()).getContainerId());
            default -> null;
        });
    }

    /**
     * Encodes an event as a shim forwards it: an {@link Any} whose type url is the bare message name, which
     * {@link #decode} reads back to an equal event.
     */
    public static Any encode(TaskEvent event) {
        return switch (event) {
            case TaskEvent.TaskCreate create -> any("TaskCreate", TaskCreate.newBuilder()
                    .setContainerId(create.containerId()).setBundle(create.bundle())
                    .addAllRootfs(create.rootfs().stream().map(TaskEvents::mount).toList())
                    .setPid(create.pid()).build());
            case TaskEvent.TaskStart start -> any("TaskStart", TaskStart.newBuilder()
                    .setContainerId(start.containerId()).setPid(start.pid()).build());
            case TaskEvent.TaskExit exit -> any("TaskExit", TaskExit.newBuilder()
                    .setContainerId(exit.containerId()).setId(exit.id()).setPid(exit.pid())
                    .setExitStatus(exit.exitStatus()).setExitedAt(timestamp(exit.exitedAt())).build());
            case TaskEvent.TaskDelete delete -> any("TaskDelete", TaskDelete.newBuilder()
                    .setContainerId(delete.containerId()).setPid(delete.pid()).setExitStatus(delete.exitStatus())
                    .setExitedAt(timestamp(delete.exitedAt())).build());
            case TaskEvent.TaskExecAdded added -> any("TaskExecAdded", TaskExecAdded.newBuilder()
                    .setContainerId(added.containerId()).setExecId(added.execId()).build());
            case TaskEvent.TaskExecStarted started -> any("TaskExecStarted", TaskExecStarted.newBuilder()
                    .setContainerId(started.containerId()).setExecId(started.execId()).setPid(started.pid())
                    .build());
            case TaskEvent.TaskPaused paused -> any("TaskPaused",
                    TaskPaused.newBuilder().setContainerId(paused.containerId()).build());
            case TaskEvent.TaskResumed resumed -> any("TaskResumed",
                    TaskResumed.newBuilder().setContainerId(resumed.containerId()).build());
            case TaskEvent.TaskOom oom -> any("TaskOOM",
                    TaskOOM.newBuilder().setContainerId(oom.containerId()).build());
        };
    }

    /** The {@code Events/Forward} request that carries {@code envelope}, whose event is a {@link TaskEvent}. */
    public static ForwardRequest forwardRequest(Envelope envelope) {
        ForwardRequest.Builder forward = ForwardRequest.newBuilder();
        forward.getEnvelopeBuilder()
                .setTimestamp(timestamp(envelope.timestamp()))
                .setNamespace(envelope.namespace())
                .setTopic(envelope.topic())
                .setEvent(encode((TaskEvent) envelope.event()));
        return forward.build();
    }

    /** An instant as a protobuf timestamp. */
    public static Timestamp timestamp(Instant instant) {
        return Timestamp.newBuilder().setSeconds(instant.getEpochSecond()).setNanos(instant.getNano()).build();
    }

    private static Any any(String name, MessageLite message) {
        return Any.newBuilder().setTypeUrl("containerd.events." + name).setValue(message.toByteString()).build();
    }

    private static Mount mount(TaskEvent.TaskMount mount) {
        return Mount.newBuilder().setType(mount.type()).setSource(mount.source()).addAllOptions(mount.options())
                .build();
    }

    /**
     * The task events of one container, from an exchange: what {@code ShimClient.events()} returns. The exchange
     * filters by container before its backlog, so other containers' events cannot evict this one's exit.
     */
    public static Flux<Envelope> of(EventExchange exchange, String namespace, String id) {
        return exchange.subscribe(EventFilter.container(namespace, id).withTopicPrefix("/tasks/"));
    }

    /**
     * When a process exited, as a shim's answer says it: empty for Go's zero time, the shim's "has not exited"
     * (a delete of an exec that never started answered 0001-01-01 while the local shim said now).
     */
    public static Optional<Instant> exitedAt(Timestamp timestamp) {
        return timestamp.getSeconds() == GO_ZERO_TIME_SECONDS ? Optional.empty() : Optional.of(instant(timestamp));
    }

    /** A protobuf timestamp as an instant; Go's zero time stays as it is. */
    public static Instant instant(Timestamp timestamp) {
        try {
            return Instant.ofEpochSecond(timestamp.getSeconds(), timestamp.getNanos());
        } catch (DateTimeException | ArithmeticException outOfRange) {
            // A shim's timestamp beyond what an Instant holds (seconds of 2^62) failed every Wait, State and Delete
            // with the JDK's DateTimeException, outside the API's errors; Go's time.Unix takes any value. The
            // nearest Instant stands for it.
            return timestamp.getSeconds() < 0 ? Instant.MIN : Instant.MAX;
        }
    }

    private static TaskEvent.TaskMount mount(Mount mount) {
        return new TaskEvent.TaskMount(mount.getType(), mount.getSource(), mount.getOptionsList());
    }
}
