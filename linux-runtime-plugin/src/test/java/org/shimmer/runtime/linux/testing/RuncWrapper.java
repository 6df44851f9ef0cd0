package org.shimmer.runtime.linux.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * A runc binary for tests: a shell script around the real runc that misbehaves on {@code runc start}, given to
 * either shim as {@code RuncOptions.binaryName} (the remote shim passes it on as its {@code BinaryName}). Every
 * other command goes to the real runc untouched. A wrapper that misbehaves reports a runc version no shim knows
 * ({@link #UNKNOWN_VERSION}), so that the local shim, which starts a container of a runc it knows in the JVM,
 * really runs its {@code runc start}.
 */
public final class RuncWrapper {

    /** What {@code --version} prints for a wrapper that must not be taken for a runc whose layout is known. */
    public static final String UNKNOWN_VERSION = "runc version 0.0.0-wrapper";

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

    /**
     * A runc whose {@code exec} writes its command line to {@link #marker()}, then waits until {@link #release()}
     * (at most 60 s) before it runs.
     */
    public static RuncWrapper heldExec(Path dir) throws IOException, InterruptedException {
        Path marker = dir.resolve("exec-began");
        return write(dir, marker, "exec", """
                echo "$*" > %s.partial && mv %s.partial %s
                for i in $(seq 1200); do [ -e %s ] && break; sleep 0.05; done
                """.formatted(marker, marker, marker, released(marker)));
    }

    /** Lets a {@link #heldExec} wrapper's waiting exec go on. */
    public void release() throws IOException {
        Files.createFile(released(marker));
    }

    private static Path released(Path marker) {
        return marker.resolveSibling("exec-released");
    }

    /**
     * A runc that appends each command line it ran to {@link #marker()}, one per line, and reports {@code version}
     * to {@code --version} (the real runc's answer when null).
     */
    public static RuncWrapper recording(Path dir, String version) throws IOException, InterruptedException {
        Path marker = dir.resolve("commands");
        String runc = Processes.run(null, "sh", "-c", "command -v runc").strip();
        Path script = Files.createDirectories(dir).resolve("runc-recording");
        String versionLine = version == null ? "" : """
                if [ "$1" = --version ]; then echo '%s'; exit 0; fi
                """.formatted(version);
        Files.writeString(script, """
                #!/bin/sh
                %secho "$*" >> %s
                exec %s "$@"
                """.formatted(versionLine, marker, runc));
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
        return new RuncWrapper(script, marker);
    }

    /** The script, for {@code RuncOptions.withBinaryName}. */
    public String binary() {
        return script.toString();
    }

    /** The file the wrapper makes when a {@code start} reached it; for {@link #recording}, its command log. */
    public Path marker() {
        return marker;
    }

    private static RuncWrapper write(Path dir, Path marker, String onStart) throws IOException, InterruptedException {
        return write(dir, marker, "start", onStart);
    }

    private static RuncWrapper write(Path dir, Path marker, String subcommand, String onIt)
            throws IOException, InterruptedException {
        String runc = Processes.run(null, "sh", "-c", "command -v runc").strip();
        Path script = Files.createDirectories(dir).resolve("runc-wrapper");
        // Only that subcommand: a container id or a global option's value never reads "start" or "exec" here.
        Files.writeString(script, """
                #!/bin/sh
                if [ "$1" = --version ]; then echo '%s'; exit 0; fi
                for arg in "$@"; do
                    if [ "$arg" = %s ]; then
                %s
                        break
                    fi
                done
                exec %s "$@"
                """.formatted(UNKNOWN_VERSION, subcommand, onIt.indent(8).stripTrailing(), runc));
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
        return new RuncWrapper(script, marker);
    }
}
