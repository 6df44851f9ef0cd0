package org.shimmer.runtime.linux.shim.remote;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;

/**
 * What reconnecting to a shim, or cleaning up after a dead one, needs beyond what the shim itself writes into
 * the bundle ({@code address}, {@code init.pid}, {@code options.json}): how it was started. Kept as
 * {@code shim.json} in the bundle's work directory, written atomically.
 *
 * @param binary the shim executable
 * @param daemonAddress the {@code -address} it was given
 * @param debug whether it runs with {@code -debug}
 * @param socket the ttRPC socket it serves on
 */
record ShimRecord(String binary, String daemonAddress, boolean debug, String socket) {

    static final String FILE = "shim.json";

    private static final ObjectMapper JSON = JsonMapper.builder().build();

    void write(Path workDir) throws IOException {
        Path partial = workDir.resolve("." + FILE + ".partial");
        JSON.writeValue(partial.toFile(), this);
        Files.move(partial, workDir.resolve(FILE), StandardCopyOption.ATOMIC_MOVE);
    }

    static Optional<ShimRecord> read(Path workDir) throws IOException {
        try {
            return Optional.of(JSON.readValue(Files.readAllBytes(workDir.resolve(FILE)), ShimRecord.class));
        } catch (NoSuchFileException absent) {
            return Optional.empty();
        }
    }

    static void remove(Path workDir) throws IOException {
        Files.deleteIfExists(workDir.resolve(FILE));
    }
}
