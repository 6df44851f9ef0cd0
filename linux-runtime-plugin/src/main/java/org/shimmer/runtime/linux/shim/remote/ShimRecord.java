package org.shimmer.runtime.linux.shim.remote;

import java.io.IOException;
import java.nio.file.Path;
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

    static void remove(Path workDir) throws IOException {
        WorkFiles.remove(workDir, FILE);
    }
}
