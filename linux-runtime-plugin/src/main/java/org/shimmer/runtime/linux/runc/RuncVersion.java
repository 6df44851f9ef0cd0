package org.shimmer.runtime.linux.runc;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The version a runc binary reports ({@code runc --version}), asked once per binary file: ~20 ms of a fresh Go
 * process that a lifecycle must not pay each time. The answer holds while the file the name resolves to is the
 * same (device and inode, modification time, size): a runc upgraded in place while we run (a 1.2 whose start runs
 * poststart hooks) was otherwise still taken for the 1.1 first asked. A file we cannot find is no runc we know.
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
    private static final ConcurrentMap<String, Asked> ASKED = new ConcurrentHashMap<>();

    /** What {@code binary} answered when it was the file with these attributes. */
    private record Asked(Object fileKey, FileTime modified, long size, Optional<RuncVersion> version) {

        boolean sameFile(BasicFileAttributes file) {
            return Objects.equals(fileKey, file.fileKey()) && modified.equals(file.lastModifiedTime())
                    && size == file.size();
        }
    }

    /**
     * The version {@code binary} reports, empty when it reports none we can read or cannot be found. Blocking: a
     * few {@code stat}s, and the first time for each file a {@code runc --version}.
     */
    static Optional<RuncVersion> of(String binary) {
        Optional<BasicFileAttributes> file = attributes(binary);
        if (file.isEmpty()) {
            return Optional.empty();
        }
        Asked asked = ASKED.get(binary);
        if (asked == null || !asked.sameFile(file.get())) {
            // Attributes read before asking: a file replaced while asked is asked again next time.
            asked = new Asked(file.get().fileKey(), file.get().lastModifiedTime(), file.get().size(), ask(binary));
            ASKED.put(binary, asked);
        }
        return asked.version();
    }

    /** The attributes of the file {@code binary} runs, resolved as {@code exec} does (the PATH for a bare name). */
    private static Optional<BasicFileAttributes> attributes(String binary) {
        String path = System.getenv("PATH");
        List<Path> candidates = new ArrayList<>();
        if (binary.contains("/") || path == null) {
            candidates.add(Path.of(binary));
        } else {
            for (String dir : path.split(":", -1)) {
                candidates.add(Path.of(dir.isEmpty() ? "." : dir, binary));
            }
        }
        for (Path file : candidates) {
            // Asked twice per lifecycle (start, delete): an absent candidate costs one stat, not an exception.
            if (!Files.exists(file)) {
                continue;
            }
            try {
                BasicFileAttributes attributes = Files.readAttributes(file, BasicFileAttributes.class);
                if (attributes.isRegularFile() && Files.isExecutable(file)) {
                    return Optional.of(attributes);
                }
            } catch (IOException absent) {
                // Not this one: exec tries the next.
            }
        }
        return Optional.empty();
    }

    /** Whether {@code binary} is a runc whose state directory layout we know (1.0 and 1.1). Blocking. */
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
