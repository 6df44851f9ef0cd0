package org.shimmer.runtime.linux.shim;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.Any;
import com.google.protobuf.Timestamp;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.events.task.TaskEvent;

class TaskEventsTest {

    /**
     * A shim's timestamp beyond what an {@link Instant} holds is the nearest one, not the JDK's DateTimeException,
     * which failed every Wait, State and Delete answering it outside the API's errors.
     */
    @Test
    void aTimestampBeyondWhatAnInstantHoldsIsTheNearestInstant() {
        assertThat(TaskEvents.instant(Timestamp.newBuilder().setSeconds(1L << 62).build())).isEqualTo(Instant.MAX);
        assertThat(TaskEvents.instant(Timestamp.newBuilder().setSeconds(-(1L << 62)).build()))
                .isEqualTo(Instant.MIN);
        assertThat(TaskEvents.instant(Timestamp.newBuilder().setSeconds(Instant.MAX.getEpochSecond())
                .setNanos(Integer.MAX_VALUE).build())).isEqualTo(Instant.MAX);
        assertThat(TaskEvents.instant(Timestamp.newBuilder().setSeconds(1_700_000_000L).setNanos(5).build()))
                .isEqualTo(Instant.ofEpochSecond(1_700_000_000L, 5));
    }

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
