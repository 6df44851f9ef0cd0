package org.shimmer.runtime.linux.shim;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Timestamp;
import java.time.Instant;
import java.util.Optional;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.shim.proto.Mount;

/** containerd's task event messages, as the API's plain {@link TaskEvent} values. */
public final class TaskEvents {

    /** Go's zero time, which shims send for "has not exited". */
    public static final long GO_ZERO_TIME_SECONDS = -62135596800L;

    private TaskEvents() {}

    /** Decodes an event by its type url; empty for types this runtime does not model. */
    public static Optional<TaskEvent> decode(Any event) throws InvalidProtocolBufferException {
        return Optional.ofNullable(switch (event.getTypeUrl()) {
            case "containerd.events.TaskCreate" -> {
                var create = org.shimmer.runtime.linux.shim.proto.TaskCreate.parseFrom(event.getValue());
                yield new TaskEvent.TaskCreate(create.getContainerId(), create.getBundle(),
                        create.getRootfsList().stream().map(TaskEvents::mount).toList(), create.getPid());
            }
            case "containerd.events.TaskStart" -> {
                var start = org.shimmer.runtime.linux.shim.proto.TaskStart.parseFrom(event.getValue());
                yield new TaskEvent.TaskStart(start.getContainerId(), start.getPid());
            }
            case "containerd.events.TaskExit" -> {
                var exit = org.shimmer.runtime.linux.shim.proto.TaskExit.parseFrom(event.getValue());
                yield new TaskEvent.TaskExit(exit.getContainerId(), exit.getId(), exit.getPid(),
                        exit.getExitStatus(), instant(exit.getExitedAt()));
            }
            case "containerd.events.TaskDelete" -> {
                var delete = org.shimmer.runtime.linux.shim.proto.TaskDelete.parseFrom(event.getValue());
                yield new TaskEvent.TaskDelete(delete.getContainerId(), delete.getPid(), delete.getExitStatus(),
                        instant(delete.getExitedAt()));
            }
            case "containerd.events.TaskExecAdded" -> {
                var added = org.shimmer.runtime.linux.shim.proto.TaskExecAdded.parseFrom(event.getValue());
                yield new TaskEvent.TaskExecAdded(added.getContainerId(), added.getExecId());
            }
            case "containerd.events.TaskExecStarted" -> {
                var started = org.shimmer.runtime.linux.shim.proto.TaskExecStarted.parseFrom(event.getValue());
                yield new TaskEvent.TaskExecStarted(started.getContainerId(), started.getExecId(), started.getPid());
            }
            case "containerd.events.TaskPaused" -> new TaskEvent.TaskPaused(
                    org.shimmer.runtime.linux.shim.proto.TaskPaused.parseFrom(event.getValue()).getContainerId());
            case "containerd.events.TaskResumed" -> new TaskEvent.TaskResumed(
                    org.shimmer.runtime.linux.shim.proto.TaskResumed.parseFrom(event.getValue()).getContainerId());
            case "containerd.events.TaskOOM" -> new TaskEvent.TaskOom(
                    org.shimmer.runtime.linux.shim.proto.TaskOOM.parseFrom(event.getValue()).getContainerId());
            default -> null;
        });
    }

    /** The task events of one container, from an exchange: what {@code ShimClient.events()} returns. */
    public static reactor.core.publisher.Flux<org.shimmer.runtime.events.Envelope> of(
            org.shimmer.runtime.events.EventExchange exchange, String namespace, String id) {
        return exchange.subscribe(org.shimmer.runtime.events.EventFilter.all().withNamespace(namespace)
                        .withTopicPrefix("/tasks/"))
                .filter(envelope -> envelope.event() instanceof TaskEvent event && event.containerId().equals(id));
    }

    /** A protobuf timestamp as an instant; Go's zero time stays as it is. */
    public static Instant instant(Timestamp timestamp) {
        return Instant.ofEpochSecond(timestamp.getSeconds(), timestamp.getNanos());
    }

    /** An instant as a protobuf timestamp. */
    public static Timestamp timestamp(Instant instant) {
        return Timestamp.newBuilder().setSeconds(instant.getEpochSecond()).setNanos(instant.getNano()).build();
    }

    private static TaskEvent.TaskMount mount(Mount mount) {
        return new TaskEvent.TaskMount(mount.getType(), mount.getSource(), mount.getOptionsList());
    }
}
