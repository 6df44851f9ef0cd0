package org.shimmer.containerd.task;

import java.net.URI;
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
