package org.shimmer.runtime.linux.cleanup;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.linux.bundle.WorkFiles;

/**
 * How the bundle's shim was launched, written to {@code launch.json} in the work directory before the shim starts:
 * the one record that exists at every point of a crash after it, so cleanup finds a custom runc root and the
 * remote shim's socket even when the host died before {@code shim.json} or {@code local.json} was written.
 *
 * @param kind which shim
 * @param runtimeRoot runc's root (without the namespace) the container is made in
 * @param runcBinary the runc binary
 * @param shimBinary the remote shim's binary, or null
 * @param daemonAddress the remote shim's {@code -address}, hashed into its socket name, or null
 * @param hostPid the JVM running a local shim, or 0
 * @param hostStartMillis that JVM's start time (a pid alone may be recycled), or 0
 */
record LaunchRecord(BundleInspection.ShimKind kind, String runtimeRoot, String runcBinary, String shimBinary,
        String daemonAddress, long hostPid, long hostStartMillis) {

    static final String FILE = "launch.json";

    void write(Path workDir) throws IOException {
        WorkFiles.write(workDir, FILE, this);
    }

    static Optional<LaunchRecord> read(Path workDir) throws IOException {
        return WorkFiles.read(workDir, FILE, LaunchRecord.class);
    }
}
