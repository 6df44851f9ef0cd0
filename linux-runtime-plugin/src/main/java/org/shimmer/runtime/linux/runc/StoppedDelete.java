package org.shimmer.runtime.linux.runc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What {@code runc delete} of a stopped container does (runc 1.0/1.1: its stopped state's destroy), in the JVM:
 * removes the cgroups runc recorded in {@code state.json} ({@code cgroup_paths}), then runc's state directory
 * {@code <root>/<id>}. It saves a Go process per delete (~7 ms on the machine).
 *
 * <p>Only what runc would do and nothing else, so anything runc's destroy would do beyond it is refused before
 * anything is removed, and runc does it: poststop hooks, systemd cgroups, Intel RDT, rootless, a container
 * sharing a pid namespace (runc then kills what is left in its cgroup), a state directory holding anything but
 * plain files, a link or a mount point in it, a cgroup path outside {@code /sys/fs/cgroup}. A cgroup is only ever
 * {@code rmdir}ed (never followed if a link; never anything in it but its empty child cgroups), a state file only
 * unlinked through a descriptor of its directory.
 */
final class StoppedDelete {

    private static final Logger log = LoggerFactory.getLogger(StoppedDelete.class);
    private static final Path CGROUPS = Path.of("/sys/fs/cgroup");
    private static final String STATE = "state.json";
    /** runc retries a busy cgroup 5 times, 10 ms then doubling: a dying task may still be leaving it. */
    private static final int CGROUP_TRIES = 5;
    private static final long FIRST_RETRY_MILLIS = 10;

    /** A delete runc's destroy would do exactly: the cgroups and the state directory's files. */
    record Plan(Path dir, List<Path> cgroups, List<byte[]> files) {}

    private StoppedDelete() {}

    /**
     * The delete of {@code id} under {@code root} if it is one we may do, empty if runc must. Touches nothing;
     * blocking.
     *
     * @throws IOException when something could not be read (runc's then, too)
     */
    static Optional<Plan> plan(Path root, String id, ObjectMapper json) throws IOException {
        Path dir = root.resolve(id);
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            return Optional.empty();
        }
        long mount = LinuxCalls.mountId(dir);
        if (LinuxCalls.mountId(root) != mount) {
            return Optional.empty();
        }
        List<byte[]> files = new ArrayList<>();
        JsonNode state = null;
        try (OwnedFd fd = OwnedFd.open(dir, LinuxCalls.O_RDONLY | LinuxCalls.O_DIRECTORY | LinuxCalls.O_NOFOLLOW
                | LinuxCalls.O_CLOEXEC)) {
            for (byte[] name : fd.use(LinuxCalls::directoryEntries)) {
                Path file = dir.resolve(new String(name, LinuxCalls.FILE_NAMES));
                if (!Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).isRegularFile()
                        || LinuxCalls.mountId(file) != mount) {
                    return Optional.empty();
                }
                if (new String(name, StandardCharsets.UTF_8).equals(STATE)) {
                    state = json.readTree(Files.readAllBytes(file));
                }
                files.add(name);
            }
        } catch (NoSuchFileException raced) {
            return Optional.empty();
        }
        if (state == null || !id.equals(state.path("id").asText()) || !plainStoppedDestroy(state)) {
            return Optional.empty();
        }
        List<Path> cgroups = new ArrayList<>();
        JsonNode paths = state.path("cgroup_paths");
        if (!paths.isObject()) {
            return Optional.empty();
        }
        for (JsonNode value : paths) {
            Path path = Path.of(value.asText()).normalize();
            if (!value.isTextual() || !path.isAbsolute() || !path.startsWith(CGROUPS) || path.equals(CGROUPS)
                    || !path.toString().equals(value.asText())) {
                return Optional.empty();
            }
            cgroups.add(path);
        }
        return Optional.of(new Plan(dir, cgroups, files));
    }

    /** Whether runc's destroy of this stopped container would do nothing but remove cgroups and the directory. */
    private static boolean plainStoppedDestroy(JsonNode state) {
        JsonNode config = state.path("config");
        JsonNode cgroups = config.path("cgroups");
        boolean ownPidNamespace = false;
        for (JsonNode namespace : config.path("namespaces")) {
            if ("NEWPID".equals(namespace.path("type").asText())) {
                ownPidNamespace = namespace.path("path").asText().isEmpty();
            }
        }
        return ownPidNamespace
                && !state.path("rootless").asBoolean(true)
                && state.path("intel_rdt_path").asText().isEmpty()
                && (config.path("intel_rdt").isMissingNode() || config.path("intel_rdt").isNull())
                && !cgroups.path("Systemd").asBoolean(true)
                && !cgroups.path("Rootless").asBoolean(true)
                && config.path("Hooks").path("poststop").isEmpty()
                && config.path("hooks").path("poststop").isEmpty();
    }

    /** Carries out {@code plan}. Blocking (a busy cgroup is retried for up to 150 ms, as runc does). */
    static void execute(Plan plan) throws IOException, InterruptedException {
        removeCgroups(plan.cgroups());
        try (OwnedFd fd = OwnedFd.open(plan.dir(), LinuxCalls.O_RDONLY | LinuxCalls.O_DIRECTORY
                | LinuxCalls.O_NOFOLLOW | LinuxCalls.O_CLOEXEC)) {
            for (byte[] name : plan.files()) {
                try {
                    fd.use(number -> {
                        LinuxCalls.unlinkat(number, name, 0);
                        return null;
                    });
                } catch (LinuxCalls.ErrnoException e) {
                    if (e.errno() != LinuxCalls.ENOENT) {
                        throw e;
                    }
                }
            }
        }
        rmdir(plan.dir());
    }

    /**
     * runc logs and forgets a cgroup it could not remove and the delete still succeeds; so do we, after its
     * retries.
     */
    private static void removeCgroups(List<Path> cgroups) throws InterruptedException {
        List<Path> left = new ArrayList<>(cgroups);
        long delay = FIRST_RETRY_MILLIS;
        for (int attempt = 1; !left.isEmpty(); attempt++) {
            List<Path> failed = new ArrayList<>();
            IOException last = null;
            for (Path cgroup : left) {
                try {
                    removeCgroup(cgroup);
                } catch (IOException e) {
                    failed.add(cgroup);
                    last = e;
                }
            }
            left = failed;
            if (left.isEmpty()) {
                return;
            }
            if (attempt == CGROUP_TRIES) {
                log.warn("could not remove the cgroups {}", left, last);
                return;
            }
            Thread.sleep(delay);
            delay *= 2;
        }
    }

    /** rmdir of a cgroup, its child cgroups first when it has some; one that is gone is fine. */
    private static void removeCgroup(Path cgroup) throws IOException {
        try {
            rmdir(cgroup);
            return;
        } catch (LinuxCalls.ErrnoException e) {
            if (e.errno() != LinuxCalls.EBUSY && e.errno() != LinuxCalls.ENOTEMPTY) {
                throw e;
            }
        }
        try (DirectoryStream<Path> children = Files.newDirectoryStream(cgroup)) {
            for (Path child : children) {
                if (Files.isDirectory(child, LinkOption.NOFOLLOW_LINKS)) {
                    removeCgroup(child);
                }
            }
        } catch (NoSuchFileException gone) {
            return;
        }
        rmdir(cgroup);
    }

    /** {@code rmdir}, which removes only an empty directory and fails on a link; gone already is done. */
    private static void rmdir(Path dir) throws IOException {
        try {
            LinuxCalls.unlinkat(LinuxCalls.AT_FDCWD, dir.toString().getBytes(LinuxCalls.FILE_NAMES),
                    LinuxCalls.AT_REMOVEDIR);
        } catch (LinuxCalls.ErrnoException e) {
            if (e.errno() != LinuxCalls.ENOENT) {
                throw e;
            }
        }
    }
}
