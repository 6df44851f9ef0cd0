package org.shimmer.runtime.linux.spec;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The cgroups of a test namespace: a typed spec puts a container in {@code /<namespace>/<id>}, like containerd.
 * runc removes the container's cgroup on delete; the namespace's own stays, as containerd's does, and is removed
 * here once empty.
 */
public final class CgroupsLeft {

    private static final Path CGROUPS = Path.of("/sys/fs/cgroup");

    private CgroupsLeft() {}

    /** Fails naming any container cgroup left under {@code namespace}; removes the namespace's empty ones. */
    public static void assertNoneUnder(String namespace) throws IOException {
        List<Path> left = new ArrayList<>();
        for (Path dir : namespaceDirs(namespace)) {
            try (Stream<Path> children = Files.list(dir)) {
                children.filter(Files::isDirectory).forEach(left::add);
            }
            if (left.isEmpty()) {
                // rmdir of a cgroup: the kernel refuses unless it has no child and no process.
                Files.delete(dir);
            }
        }
        assertThat(left).as("container cgroups left").isEmpty();
    }

    private static List<Path> namespaceDirs(String namespace) throws IOException {
        List<Path> dirs = new ArrayList<>();
        if (Files.isDirectory(CGROUPS.resolve(namespace))) {
            // cgroup v2: one hierarchy.
            dirs.add(CGROUPS.resolve(namespace));
            return dirs;
        }
        try (Stream<Path> controllers = Files.list(CGROUPS)) {
            controllers.map(controller -> controller.resolve(namespace)).filter(Files::isDirectory)
                    .forEach(dirs::add);
        }
        return dirs;
    }
}
