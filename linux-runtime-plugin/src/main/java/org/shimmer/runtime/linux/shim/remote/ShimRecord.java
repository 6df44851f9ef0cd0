package org.shimmer.runtime.linux.shim.remote;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.List;
import java.util.Optional;
import org.shimmer.runtime.linux.bundle.WorkFiles;

/**
 * What reconnecting to a shim, or cleaning up after a dead one, needs beyond what the shim itself writes into
 * the bundle ({@code address}, {@code init.pid}, {@code options.json}): how it was started. Kept as
 * {@code shim.json} in the bundle's work directory.
 *
 * @param binary the shim executable
 * @param daemonAddress the {@code -address} it was given
 * @param debug whether it runs with {@code -debug}
 * @param socket the ttRPC socket it serves on
 */
record ShimRecord(String binary, String daemonAddress, boolean debug, String socket) {

    static final String FILE = "shim.json";

    void write(Path workDir) throws IOException {
        WorkFiles.write(workDir, FILE, this);
    }

    static Optional<ShimRecord> read(Path workDir) throws IOException {
        return WorkFiles.read(workDir, FILE, ShimRecord.class);
    }

    /**
     * Which write of the record is on disk now (its file, and when it was written), or null when there is none:
     * every write replaces the file, so one shim's record is told from the next one's of the same bundle, whose
     * contents are the same.
     */
    static Object stamp(Path workDir) {
        try {
            BasicFileAttributes file = Files.readAttributes(workDir.resolve(FILE), BasicFileAttributes.class,
                    LinkOption.NOFOLLOW_LINKS);
            return List.of(String.valueOf(file.fileKey()), file.lastModifiedTime());
        } catch (IOException absentOrUnreadable) {
            return null;
        }
    }

    static void remove(Path workDir) throws IOException {
        WorkFiles.remove(workDir, FILE);
    }
}
