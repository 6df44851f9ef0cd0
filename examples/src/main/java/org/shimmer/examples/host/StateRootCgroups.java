package org.shimmer.examples.host;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;

/**
 * The cgroups of a state root's containers: a typed spec puts each in {@code /shimmer-<hash>/<namespace>/<id>},
 * {@code <hash>} the first 12 hex digits of the SHA-256 of the state root's real path (the plugin's
 * {@code CgroupPaths}). runc removes a container's own cgroup on delete; the per-root and per-namespace parents stay,
 * as containerd's namespace cgroups do, so a host with a fresh temporary state root (the demo, each test) removes
 * them once its containers are gone: each such root would otherwise leave one more tree in every hierarchy.
 */
public final class StateRootCgroups {

    private static final Path CGROUPS = Path.of("/sys/fs/cgroup");

    private StateRootCgroups() {}

    /**
     * The container cgroups still under {@code stateRoot}'s; the empty parents are removed (rmdir: the kernel refuses
     * a cgroup with a child or a process, so nothing alive is touched).
     */
    public static List<Path> removeEmptyAndListLeft(Path stateRoot) throws IOException {
        List<Path> left = new ArrayList<>();
        if (!Files.isDirectory(stateRoot)) {
            return left;
        }
        String root = "shimmer-" + hash(stateRoot.toRealPath().toString());
        for (Path hierarchy : hierarchies()) {
            Path rootDir = hierarchy.resolve(root);
            if (!Files.isDirectory(rootDir)) {
                continue;
            }
            for (Path namespaceDir : subdirectories(rootDir)) {
                List<Path> containers = subdirectories(namespaceDir);
                left.addAll(containers);
                if (containers.isEmpty()) {
                    Files.delete(namespaceDir);
                }
            }
            if (subdirectories(rootDir).isEmpty()) {
                Files.delete(rootDir);
            }
        }
        return left;
    }

    private static List<Path> subdirectories(Path dir) throws IOException {
        try (Stream<Path> children = Files.list(dir)) {
            return children.filter(Files::isDirectory).toList();
        }
    }

    private static List<Path> hierarchies() throws IOException {
        if (Files.exists(CGROUPS.resolve("cgroup.controllers"))) {
            return List.of(CGROUPS);
        }
        try (Stream<Path> controllers = Files.list(CGROUPS)) {
            // Symbolic links (cpu -> cpu,cpuacct) name a hierarchy already listed.
            return controllers.filter(path -> Files.isDirectory(path) && !Files.isSymbolicLink(path)).toList();
        }
    }

    private static String hash(String text) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(text.getBytes(UTF_8)), 0, 6);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }
}
