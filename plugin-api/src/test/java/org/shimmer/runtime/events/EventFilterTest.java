package org.shimmer.runtime.events;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.InvalidIdentifierException;
import org.shimmer.runtime.events.task.TaskEvent;

class EventFilterTest {

    private static Envelope envelope(String namespace, Object event) {
        String topic = event instanceof TaskEvent task ? task.topic() : "/containers/create";
        return new Envelope(Instant.EPOCH, namespace, topic, event);
    }

    @Test
    void aContainerFilterMatchesOnlyThatContainersTaskEventsInItsNamespace() {
        EventFilter filter = EventFilter.container("ns", "x");

        assertThat(filter.matches(envelope("ns", new TaskEvent.TaskExit("x", "exec-1", 5, 0, Instant.EPOCH))))
                .isTrue();
        assertThat(filter.matches(envelope("ns", new TaskEvent.TaskOom("x")))).isTrue();
        assertThat(filter.matches(envelope("ns", new TaskEvent.TaskOom("x2")))).isFalse();
        assertThat(filter.matches(envelope("other", new TaskEvent.TaskOom("x")))).isFalse();
        assertThat(filter.matches(envelope("ns", "x"))).as("a payload that is not a task event").isFalse();
    }

    @Test
    void narrowingKeepsWhatWasAlreadyNarrowed() {
        EventFilter filter = EventFilter.all().withContainer("x").withTopicPrefix("/tasks/ex").withNamespace("ns");

        assertThat(filter).isEqualTo(new EventFilter("ns", "/tasks/ex", "x"));
        assertThat(filter.matches(envelope("ns", new TaskEvent.TaskExit("x", "x", 5, 0, Instant.EPOCH)))).isTrue();
        assertThat(filter.matches(envelope("ns", new TaskEvent.TaskStart("x", 5)))).isFalse();
    }

    @Test
    void aContainerFilterNeedsValidNamesAndSaysWhichIsBad() {
        assertThatThrownBy(() -> EventFilter.container("ns", "../x"))
                .isInstanceOf(InvalidIdentifierException.class)
                .hasMessageContaining("\"../x\"");
        assertThatThrownBy(() -> EventFilter.container(null, "x"))
                .isInstanceOf(InvalidIdentifierException.class)
                .hasMessageContaining("namespace");
    }

    @Test
    void aTopicPrefixNoTopicCanStartWithIsRefusedByName() {
        // Accepted, it matched nothing: a subscriber waited for good for events that were flowing.
        assertThatThrownBy(() -> EventFilter.all().withTopicPrefix("tasks/"))
                .isInstanceOf(InvalidIdentifierException.class)
                .hasMessage("invalid topic prefix \"tasks/\": must start with '/'");
        assertThatThrownBy(() -> new EventFilter("ns", "/tasks//", null))
                .isInstanceOf(InvalidIdentifierException.class)
                .hasMessageContaining("\"/tasks//\"");
        assertThat(EventFilter.all().withTopicPrefix("/tasks/ex").topicPrefix()).isEqualTo("/tasks/ex");
    }
}
