package org.shimmer.runtime.linux.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * A runc binary for tests: a shell script around the real runc that misbehaves on {@code runc start}, given to
 * either shim as {@code RuncOptions.binaryName} (the remote shim passes it on as its {@code BinaryName}). Every
 * other command goes to the real runc untouched.
 */
public final class RuncWrapper {

    private final Path script;
    private final Path marker;

    private RuncWrapper(Path script, Path marker) {
        this.script = script;
        this.marker = marker;
    }

    /** A runc whose first {@code start} fails (exit 1, a message on stderr); the ones after it work. */
    public static RuncWrapper failingFirstStart(Path dir) throws IOException, InterruptedException {
        Path marker = dir.resolve("start-failed");
        return write(dir, marker, """
                if [ ! -e %1$s ]; then
                    : > %1$s
                    echo "wrapper: first start refused on purpose" >&2
                    exit 1
                fi
                """.formatted(marker));
    }

    /** A runc whose {@code start} first marks that it began, then waits {@code seconds} before starting. */
    public static RuncWrapper slowStart(Path dir, double seconds) throws IOException, InterruptedException {
        Path marker = dir.resolve("start-began");
        return write(dir, marker, """
                : > %s
                sleep %s
                """.formatted(marker, seconds));
    }

    /** The script, for {@code RuncOptions.withBinaryName}. */
    public String binary() {
        return script.toString();
    }

    /** The file the wrapper makes when a {@code start} reached it. */
    public Path marker() {
        return marker;
    }

    private static RuncWrapper write(Path dir, Path marker, String onStart) throws IOException, InterruptedException {
        String runc = Processes.run(null, "sh", "-c", "command -v runc").strip();
        Path script = Files.createDirectories(dir).resolve("runc-wrapper");
        // Only the start subcommand: a container id or a global option's value never reads "start" here.
        Files.writeString(script, """
                #!/bin/sh
                for arg in "$@"; do
                    if [ "$arg" = start ]; then
                %s
                        break
                    fi
                done
                exec %s "$@"
                """.formatted(onStart.indent(8).stripTrailing(), runc));
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
        return new RuncWrapper(script, marker);
    }
}
