package org.shimmer.runtime.linux.shim.remote;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.shim.ShimException;

/**
 * The shim binary's command line, as containerd runs it: {@code <shim> -namespace NS -address A -publish-binary B
 * -id ID [-debug] start|delete}, with the bundle as working directory.
 */
final class ShimCommand {

    /** How long {@code start} or {@code delete} may take before the process is killed. */
    static final Duration TIMEOUT = Duration.ofSeconds(10);

    /** What a finished command printed. */
    record Result(int exitCode, byte[] stdout, String stderr) {}

    private final String binary;
    private final String namespace;
    private final String id;
    private final String daemonAddress;
    private final boolean debug;
    private final Path bundle;

    ShimCommand(String binary, String namespace, String id, String daemonAddress, boolean debug, Path bundle) {
        this.binary = binary;
        this.namespace = namespace;
        this.id = id;
        this.daemonAddress = daemonAddress;
        this.debug = debug;
        this.bundle = bundle;
    }

    /**
     * Runs {@code start}: the shim re-executes itself as the daemon, which keeps running. {@code stdin} is the
     * encoded runc options; it must reach end of file, or {@code start} never returns.
     */
    Result start(byte[] stdin, Path eventsSocket) throws IOException {
        ProcessBuilder builder = builder("start");
        builder.environment().put("TTRPC_ADDRESS", eventsSocket.toString());
        return run(builder, stdin);
    }

    /**
     * Runs {@code delete}: kills and deletes the runc container, unmounts the rootfs, and prints a raw
     * {@code DeleteResponse} (always exit status 137: it cannot know the real one).
     */
    Result delete() throws IOException {
        return run(builder("delete"), new byte[0]);
    }

    private ProcessBuilder builder(String action) {
        List<String> command = new ArrayList<>(List.of(binary, "-namespace", namespace, "-address", daemonAddress,
                "-publish-binary", binary, "-id", id, "-bundle", bundle.toString()));
        if (debug) {
            command.add("-debug");
        }
        command.add(action);
        return new ProcessBuilder(command).directory(bundle.toFile());
    }

    private Result run(ProcessBuilder builder, byte[] stdin) throws IOException {
        Process process;
        try {
            process = builder.start();
        } catch (IOException e) {
            throw new ShimException("cannot run shim binary " + binary + ": " + e.getMessage(), e);
        }
        try (InputStream out = process.getInputStream(); InputStream err = process.getErrorStream()) {
            try {
                process.getOutputStream().write(stdin);
                process.getOutputStream().close();
            } catch (IOException stoppedReading) {
                // It exited (or closed stdin) before reading the options: its status and output say why.
            }
            // What the shim prints is far smaller than a pipe, so it cannot block on output before exiting.
            if (!process.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                process.destroyForcibly();
                throw new ShimException(ErrorCode.DEADLINE_EXCEEDED, "shim " + builder.command().getLast() + " for "
                        + namespace + "/" + id + " did not finish within " + TIMEOUT);
            }
            return new Result(process.exitValue(), readAll(out),
                    new String(readAll(err), StandardCharsets.UTF_8).strip());
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new ShimException("interrupted while running shim " + binary, e);
        }
    }

    private static byte[] readAll(InputStream in) {
        try {
            return in.readAllBytes();
        } catch (IOException e) {
            return new byte[0];
        }
    }
}
