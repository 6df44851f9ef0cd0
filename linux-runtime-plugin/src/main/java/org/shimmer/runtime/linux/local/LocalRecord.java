package org.shimmer.runtime.linux.local;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;

/**
 * What a new runtime instance needs to find a local container again: its init pid and whether it was started.
 * Kept as {@code local.json} in the bundle's work directory, written atomically.
 */
record LocalRecord(int pid, boolean started) {

    static final String FILE = "local.json";

    private static final ObjectMapper JSON = JsonMapper.builder().build();

    void write(Path workDir) throws IOException {
        Path partial = workDir.resolve("." + FILE + ".partial");
        JSON.writeValue(partial.toFile(), this);
        Files.move(partial, workDir.resolve(FILE), StandardCopyOption.ATOMIC_MOVE);
    }

    static Optional<LocalRecord> read(Path workDir) throws IOException {
        try {
            return Optional.of(JSON.readValue(Files.readAllBytes(workDir.resolve(FILE)), LocalRecord.class));
        } catch (NoSuchFileException absent) {
            return Optional.empty();
        }
    }

    static void remove(Path workDir) throws IOException {
        Files.deleteIfExists(workDir.resolve(FILE));
    }
}
