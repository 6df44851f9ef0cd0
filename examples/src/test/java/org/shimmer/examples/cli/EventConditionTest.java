package org.shimmer.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.task.TaskEvent;

class EventConditionTest {

    private static final Envelope EXIT = new Envelope(Instant.EPOCH, "default", "/tasks/exit",
            new TaskEvent.TaskExit("c1", "c1", 5, 0, Instant.EPOCH));

    @Test
    void everyConditionOfAFilterMustMatch() {
        assertThat(matches("topic=/tasks/exit,container=c1")).isTrue();
        assertThat(matches("topic=/tasks/*,container=c1,namespace=default")).isTrue();
        assertThat(matches("topic=/tasks/exit,container=c2")).isFalse();
        assertThat(matches("topic=/tasks/start")).isFalse();
        assertThat(matches("topic=/tasks/ex")).as("exact unless it ends in *").isFalse();
        assertThat(matches("namespace=other")).isFalse();
        assertThat(EventCondition.parse("container=c1").getFirst()
                .test(new Envelope(Instant.EPOCH, "default", "/other", "not a task event"))).isFalse();
    }

    @Test
    void aMalformedFilterIsRefusedNamingIt() {
        for (String bad : List.of("topic", "=x", "topic=", "image=busybox", "topic=/a,,container=b")) {
            assertThatThrownBy(() -> EventCondition.parse(bad)).as(bad).isInstanceOf(CliException.class)
                    .hasMessageStartingWith("invalid --filter " + bad + ": ");
        }
    }

    private static boolean matches(String filter) {
        return EventCondition.parse(filter).stream().allMatch(condition -> condition.test(EXIT));
    }
}
