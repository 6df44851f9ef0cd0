package org.shimmer.runtime.linux.shim;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.Any;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.events.task.TaskEvent;

class TaskEventsTest {

    @Test
    void everyEventEncodesAsAShimForwardsItAndDecodesBackEqual() throws Exception {
        Instant at = Instant.parse("2026-11-30T12:00:00.123456789Z");
        List<TaskEvent> events = List.of(
                new TaskEvent.TaskCreate("c", "/state/default/c", List.of(new TaskEvent.TaskMount("overlay",
                        "overlay", List.of("lowerdir=/a", "upperdir=/b"))), 10),
                new TaskEvent.TaskStart("c", 10),
                new TaskEvent.TaskExit("c", "c", 10, 137, at),
                new TaskEvent.TaskDelete("c", 10, 137, at),
                new TaskEvent.TaskExecAdded("c", "e"),
                new TaskEvent.TaskExecStarted("c", "e", 11),
                new TaskEvent.TaskPaused("c"),
                new TaskEvent.TaskResumed("c"),
                new TaskEvent.TaskOom("c"));

        for (TaskEvent event : events) {
            Any encoded = TaskEvents.encode(event);
            assertThat(encoded.getTypeUrl()).startsWith("containerd.events.Task");
            assertThat(TaskEvents.decode(encoded)).as(event.topic()).contains(event);
        }
    }
}
