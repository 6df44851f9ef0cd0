package org.shimmer.runtime.linux.runc;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The version a runc binary reports ({@code runc --version}), asked once per binary path for the life of the
 * class loader: ~20 ms of a fresh Go process that a lifecycle must not pay each time.
 *
 * <p>Whether we may do a step of runc's ourselves depends on it: runc 1.0 and 1.1 keep a created container's
 * {@code exec.fifo} and {@code state.json} (with {@code cgroup_paths} and {@code Hooks}) in {@code <root>/<id>} and
 * run no hook on {@code start}. runc 1.2 moved the poststart hooks into {@code runc start} and changed how delete
 * cleans up; until those are read and tested, 1.2 and later, a binary that prints something else, or one that
 * fails, keeps every command its own.
 */
record RuncVersion(int major, int minor) {

    private static final Pattern VERSION = Pattern.compile("^runc version (\\d+)\\.(\\d+)", Pattern.MULTILINE);
    private static final long ASK_TIMEOUT_SECONDS = 10;
    private static final ConcurrentMap<String, Optional<RuncVersion>> ASKED = new ConcurrentHashMap<>();

    /** The version {@code binary} reports, empty when it reports none we can read. Blocking the first time. */
    static Optional<RuncVersion> of(String binary) {
        return ASKED.computeIfAbsent(binary, RuncVersion::ask);
    }

    /** Whether {@code binary} is a runc whose state directory layout we know (1.0 and 1.1). Blocking once. */
    static boolean knownLayout(String binary) {
        return of(binary).filter(version -> version.major() == 1 && version.minor() <= 1).isPresent();
    }

    static Optional<RuncVersion> parse(String printed) {
        Matcher matcher = VERSION.matcher(printed);
        return matcher.find() ? Optional.of(new RuncVersion(Integer.parseInt(matcher.group(1)),
                Integer.parseInt(matcher.group(2)))) : Optional.empty();
    }

    private static Optional<RuncVersion> ask(String binary) {
        Process process = null;
        try {
            process = new ProcessBuilder(binary, "--version").redirectInput(ProcessBuilder.Redirect.from(
                    new File("/dev/null"))).redirectError(ProcessBuilder.Redirect.DISCARD).start();
            // Its end first, bounded: a binary that hangs with its stdout open must not hold an io thread for good.
            // What it prints is a few lines, far less than a pipe holds.
            if (!process.waitFor(ASK_TIMEOUT_SECONDS, TimeUnit.SECONDS) || process.exitValue() != 0) {
                return Optional.empty();
            }
            try (InputStream out = process.getInputStream()) {
                return parse(new String(out.readNBytes(4096), StandardCharsets.UTF_8));
            }
        } catch (IOException e) {
            return Optional.empty();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        } finally {
            if (process != null && process.isAlive()) {
                process.destroyForcibly();
            }
        }
    }
}
