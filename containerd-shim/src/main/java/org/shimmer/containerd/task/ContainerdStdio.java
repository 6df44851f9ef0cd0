package org.shimmer.containerd.task;

import java.io.IOException;
import java.net.URI;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.Path;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.shim.Stdio;

/**
 * The streams of a create or exec request as containerd's clients name them: empty for none, a path (the FIFOs
 * {@code ctr} made), or a {@code file://} URI (a log file). {@code binary://} loggers are refused by name.
 */
final class ContainerdStdio {

    private ContainerdStdio() {}

    static Stdio of(String stdin, String stdout, String stderr) {
        return Stdio.fifos(path("stdin", stdin), path("stdout", stdout), path("stderr", stderr));
    }

    /**
     * Creates the log files {@code file://} URIs name, with their directory, when missing (0755 and 0644, as
     * runc's shim makes them). Blocking.
     */
    static void createLogFiles(String... values) throws IOException {
        for (String value : values) {
            if (value != null && value.startsWith("file://")) {
                Path file = Path.of(URI.create(value));
                Files.createDirectories(file.getParent(), PosixFilePermissions.asFileAttribute(
                        PosixFilePermissions.fromString("rwxr-xr-x")));
                try {
                    Files.createFile(file, PosixFilePermissions.asFileAttribute(
                            PosixFilePermissions.fromString("rw-r--r--")));
                } catch (FileAlreadyExistsException appended) {
                    // Appended to, as it is.
                }
            }
        }
    }

    private static Path path(String stream, String value) {
        if (value == null || value.isEmpty()) {
            return null;
        }
        if (value.startsWith("file://")) {
            return Path.of(URI.create(value));
        }
        if (value.contains("://")) {
            throw new InvalidSpecException(stream + " " + value + ": only FIFO paths and file:// are supported");
        }
        Path path = Path.of(value);
        if (!path.isAbsolute()) {
            throw new InvalidSpecException(stream + " " + value + " is not an absolute path");
        }
        return path;
    }
}
