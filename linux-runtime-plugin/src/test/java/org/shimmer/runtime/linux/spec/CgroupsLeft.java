package org.shimmer.runtime.linux.spec;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The cgroups of a test's state root and namespace: a typed spec puts a container in
 * {@code /shimmer-<hash>/<namespace>/<id>} ({@link CgroupPaths}). runc removes the container's cgroup on delete;
 * the namespace's and the state root's stay, as containerd's namespace cgroups do, and are removed here once
 * empty (a fresh temporary state root per test would leave one more each run).
 */
public final class CgroupsLeft {

    private static final Path CGROUPS = Path.of("/sys/fs/cgroup");

    private CgroupsLeft() {}

    /**
     * Fails naming any container cgroup left under {@code namespace} of {@code stateRoot}; removes the empty
     * namespace and state-root cgroups.
     */
    public static void assertNoneUnder(Path stateRoot, String namespace) throws IOException {
        String root = CgroupPaths.root(stateRoot).substring(1);
        List<Path> left = new ArrayList<>();
        for (Path hierarchy : hierarchies()) {
            Path rootDir = hierarchy.resolve(root);
            Path namespaceDir = rootDir.resolve(namespace);
            if (Files.isDirectory(namespaceDir)) {
                try (Stream<Path> children = Files.list(namespaceDir)) {
                    children.filter(Files::isDirectory).forEach(left::add);
                }
                removeIfEmpty(namespaceDir);
            }
            if (Files.isDirectory(rootDir)) {
                removeIfEmpty(rootDir);
            }
        }
        assertThat(left).as("container cgroups left").isEmpty();
    }

    // rmdir of a cgroup: the kernel refuses unless it has no child and no process; another namespace's may stay.
    private static void removeIfEmpty(Path dir) throws IOException {
        try (Stream<Path> children = Files.list(dir)) {
            if (children.anyMatch(Files::isDirectory)) {
                return;
            }
        }
        Files.delete(dir);
    }

    private static List<Path> hierarchies() throws IOException {
        if (Files.exists(CGROUPS.resolve("cgroup.controllers"))) {
            // cgroup v2: one hierarchy.
            return List.of(CGROUPS);
        }
        try (Stream<Path> controllers = Files.list(CGROUPS)) {
            return controllers.filter(Files::isDirectory).toList();
        }
    }
}
