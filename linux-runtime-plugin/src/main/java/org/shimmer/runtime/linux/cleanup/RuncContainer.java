package org.shimmer.runtime.linux.cleanup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.linux.spec.CgroupPaths;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.shim.ShimException;

/**
 * One container in a runc root, seen from outside any shim: its state, and its forced removal. Unlike
 * {@code runc.Runc} it logs nowhere in the bundle, which may be half made or half deleted. Blocking.
 */
final class RuncContainer {

    /** How long one runc command may take. */
    static final Duration TIMEOUT = Duration.ofSeconds(10);

    private static final ObjectMapper JSON = JsonMapper.builder().build();

    private final String binary;
    private final Path runtimeRoot;
    private final Path root;
    private final String id;

    /** {@code runtimeRoot} without the namespace; runc runs with {@code --root <runtimeRoot>/<namespace>}. */
    RuncContainer(String binary, Path runtimeRoot, String namespace, String id) {
        this.binary = binary;
        this.runtimeRoot = runtimeRoot;
        this.root = runtimeRoot.resolve(namespace);
        this.id = id;
    }

    /** runc's directory for the container; it exists from early in {@code runc create} until its delete. */
    Path stateDir() {
        return root.resolve(id);
    }

    /** Whether runc has a directory for the container (asked by every inspection: no exception for absence). */
    private boolean hasStateDir() {
        return LinuxCalls.isDirectoryNoFollow(stateDir());
    }

    /** What runc says of the container, if it has a state directory for it. */
    Optional<BundleInspection.Container> state() throws IOException {
        if (!hasStateDir()) {
            return Optional.empty();
        }
        Result result = run("state", id);
        if (result.exit() != 0) {
            // A create that died before state.json was written: runc cannot load it, but it is there.
            return hasStateDir()
                    ? Optional.of(new BundleInspection.Container("unknown", 0, runtimeRoot))
                    : Optional.empty();
        }
        JsonNode state = JSON.readTree(result.stdout());
        return Optional.of(new BundleInspection.Container(state.path("status").asText("unknown"),
                state.path("pid").asInt(0), runtimeRoot));
    }

    /**
     * Kills every process of the container and deletes it ({@code runc kill --all 9}, {@code runc delete
     * --force}); a state directory runc cannot load (no {@code state.json}) is removed, once no process of the
     * bundle is left to use it.
     */
    void forceRemove() throws IOException {
        if (!hasStateDir()) {
            return;
        }
        run("kill", "--all", id, "9");
        Result deleted = run("delete", "--force", id);
        if (!hasStateDir()) {
            return;
        }
        if (Files.exists(stateDir().resolve("state.json"), LinkOption.NOFOLLOW_LINKS)) {
            throw new ShimException("runc delete --force " + id + " in " + root + " failed: " + deleted.stderr());
        }
        removeUnloadable(stateDir());
    }

    /** Where runc looks for cgroup hierarchies: the {@code cgroup} and {@code cgroup2} mounts at or under it. */
    private static final Path CGROUPS = Path.of("/sys/fs/cgroup");
    private static final Path MOUNTINFO = Path.of("/proc/self/mountinfo");

    /**
     * Removes the container's cgroup from every hierarchy where it is left empty, once runc has no state for the
     * container and nothing of it runs: a {@code runc create} killed midway (its host died, and a forced delete
     * killed the create itself) has made the cgroups and can no longer remove them, and {@code runc delete} cannot
     * find a container without {@code state.json}: every such crash left one empty cgroup per hierarchy for good.
     * Only the cgroup the runtime names for this container ({@link CgroupPaths#of}: under the state root's own
     * {@code shimmer-<hash>}) is touched: any other path a bundle's spec gives (a raw spec's, or runc's {@code /<id>}
     * without one) may be another runc container's or the system's, stopped and empty, not ours to remove. Only
     * {@code rmdir}: a cgroup with a process or a child stays; the parents stay, as after runc's own delete.
     */
    void removeLeftCgroups(Path stateRoot, String namespace, Path bundleDir) {
        if (hasStateDir()) {
            return;
        }
        Optional<String> path = ownCgroupsPath(stateRoot, namespace, bundleDir);
        if (path.isEmpty()) {
            return;
        }
        List<Path> hierarchies = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(MOUNTINFO)) {
                // "<id> <parent> <dev> <root> <mount point> <options> [<optional>...] - <type> <source> <options>"
                String[] fields = line.split(" ");
                int separator = List.of(fields).indexOf("-");
                if (fields.length > 4 && separator > 0 && separator + 1 < fields.length
                        && fields[separator + 1].startsWith("cgroup") && fields[4].startsWith(CGROUPS.toString())) {
                    hierarchies.add(Path.of(fields[4]));
                }
            }
        } catch (IOException | RuntimeException unreadable) {
            return;
        }
        for (Path hierarchy : hierarchies) {
            Path cgroup = hierarchy.resolve(path.get()).normalize();
            if (!cgroup.startsWith(hierarchy) || cgroup.equals(hierarchy)
                    || !LinuxCalls.isDirectoryNoFollow(cgroup)) {
                continue;
            }
            try {
                Files.delete(cgroup);
            } catch (IOException inUse) {
                // Busy (a process or a child in it) or gone meanwhile: not ours to force.
            }
        }
    }

    /** The bundle's cgroup path relative to a hierarchy's root when it is the one the runtime names for it. */
    private Optional<String> ownCgroupsPath(Path stateRoot, String namespace, Path bundleDir) {
        try {
            JsonNode spec = JSON.readTree(Files.readAllBytes(bundleDir.resolve("config.json")));
            String path = spec.path("linux").path("cgroupsPath").asText("");
            return path.equals(CgroupPaths.of(stateRoot, namespace, id)) ? Optional.of(path.substring(1))
                    : Optional.empty();
        } catch (IOException | RuntimeException unreadable) {
            return Optional.empty();
        }
    }

    /** runc's own files (exec.fifo and the like); no symbolic link is followed, no other file system entered. */
    private static void removeUnloadable(Path dir) throws IOException {
        Object device = Files.getAttribute(dir, "unix:dev", LinkOption.NOFOLLOW_LINKS);
        Files.walkFileTree(dir, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path sub, BasicFileAttributes attrs) throws IOException {
                if (!device.equals(Files.getAttribute(sub, "unix:dev", LinkOption.NOFOLLOW_LINKS))) {
                    throw new IOException("refusing to delete across a mount point: " + sub);
                }
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                Files.deleteIfExists(file);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path sub, IOException e) throws IOException {
                if (e != null) {
                    throw e;
                }
                Files.deleteIfExists(sub);
                return FileVisitResult.CONTINUE;
            }
        });
    }

    private record Result(int exit, byte[] stdout, String stderr) {}

    private Result run(String... args) throws IOException {
        List<String> command = new ArrayList<>(List.of(binary, "--root", root.toString()));
        command.addAll(List.of(args));
        Process process;
        try {
            process = new ProcessBuilder(command).redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null")
                    .toFile())).start();
        } catch (IOException e) {
            throw new ShimException("cannot run " + binary + ": " + e.getMessage(), e);
        }
        try (InputStream out = process.getInputStream(); InputStream err = process.getErrorStream()) {
            // runc prints little: neither pipe fills before it exits.
            if (!process.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                process.destroyForcibly();
                throw new ShimException(ErrorCode.DEADLINE_EXCEEDED,
                        String.join(" ", command) + " did not finish within " + TIMEOUT);
            }
            return new Result(process.exitValue(), out.readAllBytes(),
                    new String(err.readAllBytes(), StandardCharsets.UTF_8).strip());
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new ShimException("interrupted while running " + String.join(" ", command), e);
        }
    }
}
