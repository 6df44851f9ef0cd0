package org.shimmer.runtime.events;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.NullAndEmptySource;
import org.junit.jupiter.params.provider.ValueSource;
import org.shimmer.runtime.InvalidIdentifierException;

class TopicsTest {

    @ParameterizedTest
    @ValueSource(strings = {"/tasks/exit", "/tasks/exec-added", "/a", "/containers/create"})
    void acceptsContainerdTopics(String topic) {
        assertThat(Topics.requireValid(topic)).isEqualTo(topic);
    }

    @ParameterizedTest
    @NullAndEmptySource
    @ValueSource(strings = {"/", "tasks/exit", "/tasks/", "//tasks", "/tasks//exit", "/tasks/../x", "/tasks/a b"})
    void rejectsAndNamesTheBadTopic(String topic) {
        assertThatThrownBy(() -> Topics.requireValid(topic))
                .isInstanceOf(InvalidIdentifierException.class)
                .hasMessageStartingWith("invalid topic " + (topic == null ? "null" : "\"" + topic + "\""));
    }

    @ParameterizedTest
    @ValueSource(strings = {"/", "/tasks", "/tasks/", "/tasks/ex", "/tasks/exec-", "/tasks/exit"})
    void acceptsPrefixesOfContainerdTopics(String prefix) {
        assertThat(Topics.requireValidPrefix(prefix)).isEqualTo(prefix);
    }

    @ParameterizedTest
    @NullAndEmptySource
    @ValueSource(strings = {"tasks/", "//", "/tasks//", "/tasks/../", "/tasks/.e", "/tasks/a b", "/tasks/a--"})
    void rejectsAndNamesAPrefixNoTopicStartsWith(String prefix) {
        assertThatThrownBy(() -> Topics.requireValidPrefix(prefix))
                .isInstanceOf(InvalidIdentifierException.class)
                .hasMessageStartingWith("invalid topic prefix " + (prefix == null ? "null" : "\"" + prefix + "\""));
    }
}
