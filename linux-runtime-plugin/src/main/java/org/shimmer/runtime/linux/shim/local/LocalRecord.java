package org.shimmer.runtime.linux.shim.local;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import org.shimmer.runtime.linux.bundle.WorkFiles;
import org.shimmer.runtime.linux.cleanup.Launches;

/**
 * What a new runtime instance needs to find a local container again: its init pid. Kept as {@code local.json} in
 * the bundle's work directory, written once runc created the container. {@code started} is written false; whether
 * the container was started is runc's {@code exec.fifo} to tell (see {@code LocalLauncher#startedByRunc}), true
 * only in records of versions that rewrote the record at start. {@code hostPid} and {@code hostStartMillis} name the
 * JVM that created it.
 */
record LocalRecord(int pid, boolean started, long hostPid, long hostStartMillis) {

    /** The record of an init this JVM's runtime just created: its parent is this JVM, the subreaper. */
    static LocalRecord created(int pid) {
        return new LocalRecord(pid, false, Launches.thisJvmPid(), Launches.thisJvmStartMillis());
    }

    /**
     * Whether a runtime of this JVM created the container, so that its init's exit went to this JVM: watched,
     * reaped and published by that runtime, or waiting as our zombie. A record of another JVM, or of a version
     * that wrote no host, says no.
     */
    boolean createdHere() {
        return hostPid != 0 && Launches.isThisJvm(hostPid, hostStartMillis);
    }

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
