package org.shimmer.runtime.linux.image;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.image.ImageConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The image records, {@code images/<sha256 of the name, hex>.json}: one per name.
 *
 * <p>Invariant: a record exists only for a complete image (written last, after every layer is in place) and is
 * never seen half written: it is written to a temporary file, synced, renamed over the old one, and the directory
 * synced. Readers take no lock.
 */
final class ImageRecords {

    /**
     * Built on first use, not when a runtime view makes its image store: building a mapper loads hundreds of
     * classes, and every CLI command made one though most read no image (issue 13).
     */
    private static final class Json {
        static final ObjectMapper MAPPER = JsonMapper.builder().build();
    }
    private static final String SUFFIX = ".json";
    private static final String TEMPORARY = ".tmp";
    private static final Logger log = LoggerFactory.getLogger(ImageRecords.class);

    /** A record: the image, and the unpacked bytes of each of its layers (for images that share them). */
    record Stored(Image image, List<Long> layerBytes) {}

    private final Path dir;

    ImageRecords(Path dir) {
        this.dir = dir;
    }

    Path file(String name) {
        return dir.resolve(BlobInput.sha256Hex(name) + SUFFIX);
    }

    /** The record of {@code name}; null when there is none. */
    Stored read(String name) throws IOException {
        return read(file(name));
    }

    /** A record that exists but cannot be read: cut short, edited, or written by another version of the store. */
    static final class Damaged extends IOException {
        Damaged(Path file, String reason, Throwable cause) {
            super("image record " + file + " is damaged: " + reason, cause);
        }
    }

    /** The records that read, by name, and the files of those that do not. */
    record Scan(List<Stored> records, List<Path> damaged) {}

    /** Every record, the damaged ones apart. */
    Scan scan() throws IOException {
        List<Stored> all = new ArrayList<>();
        List<Path> damaged = new ArrayList<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "*" + SUFFIX)) {
            for (Path file : files) {
                try {
                    Stored stored = read(file);
                    if (stored != null) {
                        all.add(stored);
                    }
                } catch (Damaged e) {
                    damaged.add(file);
                }
            }
        } catch (NoSuchFileException e) {
            return new Scan(List.of(), List.of());
        }
        all.sort(Comparator.comparing(stored -> stored.image().name()));
        return new Scan(all, damaged);
    }

    /**
     * Every record that reads, by name. A damaged one is left out with a warning: one such file made every list,
     * import, run and remove of the store fail, the remove of its own name included, so nothing could repair it.
     */
    List<Stored> all() throws IOException {
        Scan scan = scan();
        for (Path file : scan.damaged()) {
            log.warn("image record {} is damaged and left out; remove or import its image again", file);
        }
        return scan.records();
    }

    void write(Stored stored) throws IOException {
        Image image = stored.image();
        ObjectNode json = Json.MAPPER.createObjectNode();
        json.put("name", image.name());
        json.put("digest", image.digest());
        ObjectNode config = json.putObject("config");
        strings(config.putArray("entrypoint"), image.config().entrypoint());
        strings(config.putArray("cmd"), image.config().cmd());
        strings(config.putArray("env"), image.config().env());
        config.put("workingDir", image.config().workingDir());
        config.put("user", image.config().user());
        ObjectNode labels = config.putObject("labels");
        image.config().labels().forEach(labels::put);
        strings(json.putArray("layers"), image.layers());
        ArrayNode bytes = json.putArray("layerBytes");
        stored.layerBytes().forEach(bytes::add);
        json.put("size", image.size());
        json.put("imported", image.imported().toString());
        Path file = file(image.name());
        Path temporary = file.resolveSibling(file.getFileName() + TEMPORARY);
        try {
            try (FileChannel out = FileChannel.open(temporary, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                out.write(ByteBuffer.wrap(Json.MAPPER.writeValueAsBytes(json)));
                out.force(true);
            }
            Files.move(temporary, file, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException | RuntimeException e) {
            // A full disk: nothing else would ever delete it but an import of the same name.
            try {
                Files.deleteIfExists(temporary);
            } catch (IOException undone) {
                e.addSuppressed(undone);
            }
            throw e;
        }
        syncDirectory(dir);
    }

    /**
     * Deletes the temporary files of writes a crash cut short. Under the store's lock, which every write holds: any
     * such file is dead. Not a record, so never listed, but nothing else deleted it.
     */
    void sweepTemporaries() throws IOException {
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "*" + SUFFIX + TEMPORARY)) {
            for (Path file : files) {
                Files.deleteIfExists(file);
            }
        } catch (NoSuchFileException e) {
            // No record was ever written.
        }
    }

    void delete(String name) throws IOException {
        Files.deleteIfExists(file(name));
        syncDirectory(dir);
    }

    static void syncDirectory(Path dir) throws IOException {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        }
    }

    /** The record in {@code file}; null when there is none. */
    private static Stored read(Path file) throws IOException {
        JsonNode json;
        try {
            json = Json.MAPPER.readTree(Files.readAllBytes(file));
        } catch (NoSuchFileException e) {
            return null;
        } catch (JacksonException e) {
            throw new Damaged(file, e.getOriginalMessage(), e);
        }
        try {
            return parse(json);
        } catch (RuntimeException e) {
            // A missing or malformed field (an import time that does not parse, no object at all).
            throw new Damaged(file, e.toString(), e);
        }
    }

    private static Stored parse(JsonNode json) {
        JsonNode config = json.path("config");
        Map<String, String> labels = new LinkedHashMap<>();
        config.path("labels").properties().forEach(e -> labels.put(e.getKey(), e.getValue().asText()));
        List<Long> layerBytes = new ArrayList<>();
        json.path("layerBytes").forEach(n -> layerBytes.add(n.asLong()));
        Image image = new Image(json.path("name").asText(), json.path("digest").asText(),
                new ImageConfig(strings(config.path("entrypoint")), strings(config.path("cmd")),
                        strings(config.path("env")), config.path("workingDir").asText(""),
                        config.path("user").asText(""), labels),
                strings(json.path("layers")), json.path("size").asLong(),
                Instant.parse(json.path("imported").asText()));
        return new Stored(image, layerBytes);
    }

    private static void strings(ArrayNode array, List<String> values) {
        values.forEach(array::add);
    }

    private static List<String> strings(JsonNode array) {
        List<String> values = new ArrayList<>();
        array.forEach(value -> values.add(value.asText()));
        return values;
    }
}
