package org.shimmer.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.task.TaskEvent;

class JsonTest {

    @Test
    void anEventIsDataNotAToStringAndParsesBack() throws Exception {
        Instant at = Instant.parse("2026-11-30T11:00:00.123456789Z");
        Envelope envelope = new Envelope(at, "default", "/tasks/create", new TaskEvent.TaskCreate("c1",
                "/state/default/c1", List.of(new TaskEvent.TaskMount("overlay", "overlay", List.of("ro",
                        "lowerdir=/a"))), 42));

        String line = Json.line(envelope);

        assertThat(line).doesNotContain("\n").doesNotContain("TaskMount[");
        JsonNode read = Json.mapper().readTree(line);
        assertThat(read.path("timestamp").asText()).isEqualTo("2026-11-30T11:00:00.123456789Z");
        assertThat(read.path("topic").asText()).isEqualTo("/tasks/create");
        JsonNode rootfs = read.path("event").path("rootfs");
        assertThat(rootfs.isArray()).isTrue();
        assertThat(rootfs.get(0).path("type").asText()).isEqualTo("overlay");
        assertThat(rootfs.get(0).path("options").get(1).asText()).isEqualTo("lowerdir=/a");
        assertThat(read.path("event").path("pid").asInt()).isEqualTo(42);
    }

    @Test
    void controlCharactersQuotesAndBackslashesAreEscaped() throws Exception {
        String nasty = "a\u0001b\nc\"d\\e\u007f\u001b[31m";
        record Args(List<String> args) {}

        String line = Json.line(new Args(List.of(nasty)));

        assertThat(line.chars()).as("no raw control character").noneMatch(c -> c < 0x20);
        assertThat(line).contains("\\u0001").contains("\\n").contains("\\\"").contains("\\\\");
        assertThat(Json.mapper().readTree(line).path("args").get(0).asText()).isEqualTo(nasty);
        assertThat(Json.mapper().readTree(Json.pretty(new Args(List.of(nasty)))).path("args").get(0).asText())
                .isEqualTo(nasty);
    }

    @Test
    void optionalsAreTheirValueOrNullAndPathsAreTheirText() throws Exception {
        record Seen(Optional<Instant> exitedAt, Optional<Integer> pid, Path bundle, Map<String, Object> extra) {}

        JsonNode read = Json.mapper().readTree(Json.line(new Seen(Optional.empty(), Optional.of(7),
                Path.of("/state/default/c 1"), Map.of("k", "v"))));

        assertThat(read.path("exitedAt").isNull()).isTrue();
        assertThat(read.path("pid").asInt()).isEqualTo(7);
        assertThat(read.path("bundle").asText()).isEqualTo("/state/default/c 1");
        assertThat(read.path("extra").path("k").asText()).isEqualTo("v");
    }
}
