package org.shimmer.runtime.linux.bundle;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;
import org.shimmer.runtime.linux.sys.LinuxCalls;

/**
 * Small JSON records the runtime keeps in a bundle's work directory (how to reach its shim, its init pid), so a
 * restarted runtime finds its containers again. Written atomically: a reader sees the old record or the new one.
 */
public final class WorkFiles {

    private static final ObjectMapper JSON = JsonMapper.builder().build();

    private WorkFiles() {}

    /**
     * Writes {@code record} as {@code <workDir>/<name>}, replacing it atomically. A write that fails (a full disk)
     * leaves the old record, if any, and no partial file, and its error names the record's file: a write error
     * says only "No space left on device".
     */
    public static void write(Path workDir, String name, Object record) throws IOException {
        Path partial = workDir.resolve("." + name + ".partial");
        try {
            JSON.writeValue(partial.toFile(), record);
            Files.move(partial, workDir.resolve(name), StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            try {
                Files.deleteIfExists(partial);
            } catch (IOException notRemoved) {
                e.addSuppressed(notRemoved);
            }
            if (e instanceof FileSystemException) {
                throw e;
            }
            FileSystemException named = new FileSystemException(workDir.resolve(name).toString(), null,
                    "cannot write: " + e.getMessage());
            named.initCause(e);
            throw named;
        }
    }

    /** Reads {@code <workDir>/<name>}, if it exists. */
    public static <T> Optional<T> read(Path workDir, String name, Class<T> type) throws IOException {
        Path file = workDir.resolve(name);
        if (LinuxCalls.lstat(file) == null) {
            // Absent is the common answer (asked before every create and delete): no exception for it.
            return Optional.empty();
        }
        try {
            return Optional.of(JSON.readValue(Files.readAllBytes(file), type));
        } catch (NoSuchFileException absent) {
            return Optional.empty();
        }
    }

    /** Removes {@code <workDir>/<name>}, if it exists. */
    public static void remove(Path workDir, String name) throws IOException {
        Files.deleteIfExists(workDir.resolve(name));
    }
}
