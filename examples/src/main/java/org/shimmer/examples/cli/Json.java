package org.shimmer.examples.cli;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.SerializerProvider;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.databind.ser.std.StdSerializer;
import com.fasterxml.jackson.databind.ser.std.ToStringSerializer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Optional;

/**
 * The CLI's JSON, written by Jackson: records by their components, instants as ISO-8601, paths as they are,
 * an empty optional as null, every control character escaped. The hand-made JSON it replaces wrote a record's
 * list as its {@code toString()} and let control characters through raw, which made {@code events} invalid JSON.
 */
final class Json {

    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .addModule(new SimpleModule("shimmer-cli")
                    .addSerializer(Instant.class, ToStringSerializer.instance)
                    .addSerializer(Path.class, new ToStringSerializer(Path.class))
                    .addSerializer(new OptionalSerializer()))
            .build();

    private static final ObjectMapper PRETTY = MAPPER.copy().enable(SerializationFeature.INDENT_OUTPUT);

    private Json() {}

    /** {@code value} as one line of JSON. */
    static String line(Object value) {
        return write(MAPPER, value);
    }

    /** {@code value} as indented JSON, for people. */
    static String pretty(Object value) {
        return write(PRETTY, value);
    }

    /** The mapper itself, for callers that build trees ({@code inspect}) or read JSON back. */
    static ObjectMapper mapper() {
        return MAPPER;
    }

    private static String write(ObjectMapper mapper, Object value) {
        try {
            return mapper.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            // Only the CLI's own types are written: one it cannot write is a bug, not a user error.
            throw new UncheckedIOException("cannot write " + value.getClass().getName() + " as JSON", e);
        }
    }

    /** An optional as its value, or null. */
    @SuppressWarnings({"rawtypes", "unchecked"})
    private static final class OptionalSerializer extends StdSerializer<Optional> {

        OptionalSerializer() {
            super(Optional.class);
        }

        @Override
        public void serialize(Optional value, JsonGenerator out, SerializerProvider provider) throws IOException {
            provider.defaultSerializeValue(value.orElse(null), out);
        }
    }
}
