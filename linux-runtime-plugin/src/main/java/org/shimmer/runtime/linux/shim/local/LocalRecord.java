package org.shimmer.runtime.linux.shim.local;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import org.shimmer.runtime.linux.bundle.WorkFiles;

/**
 * What a new runtime instance needs to find a local container again: its init pid. Kept as {@code local.json} in
 * the bundle's work directory, written once runc created the container. {@code started} is written false; whether
 * the container was started is runc's {@code exec.fifo} to tell (see {@code LocalLauncher#startedByRunc}), true
 * only in records of versions that rewrote the record at start.
 */
record LocalRecord(int pid, boolean started) {

    static final String FILE = "local.json";

    void write(Path workDir) throws IOException {
        WorkFiles.write(workDir, FILE, this);
    }

    static Optional<LocalRecord> read(Path workDir) throws IOException {
        return WorkFiles.read(workDir, FILE, LocalRecord.class);
    }

    static void remove(Path workDir) throws IOException {
        WorkFiles.remove(workDir, FILE);
    }
}
