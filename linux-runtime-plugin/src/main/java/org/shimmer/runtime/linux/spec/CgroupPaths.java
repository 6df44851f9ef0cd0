package org.shimmer.runtime.linux.spec;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Where a typed spec puts a container's cgroup: {@code /shimmer-<hash>/<namespace>/<id>}, {@code <hash>} the first
 * 12 hex digits of the SHA-256 of the state root's real path. A plain {@code /<namespace>/<id>} was shared by every
 * state root and by containerd's own containers of that namespace and id: one set of limits for two containers,
 * stats summed, a kill of all reaching the other's processes.
 */
public final class CgroupPaths {

    private static final String PREFIX = "shimmer-";

    private CgroupPaths() {}

    /** The cgroup of container {@code namespace}/{@code id} of {@code stateRoot}. Blocking: reads the file system. */
    public static String of(Path stateRoot, String namespace, String id) throws IOException {
        return root(stateRoot) + "/" + namespace + "/" + id;
    }

    /** The cgroup every container of {@code stateRoot} is under. Blocking: reads the file system. */
    public static String root(Path stateRoot) throws IOException {
        return "/" + PREFIX + hash(realPath(stateRoot).toString());
    }

    // The state root may not exist before its first bundle: the real path of its nearest existing ancestor, and
    // the rest as given, name the same directory once it is made.
    private static Path realPath(Path path) throws IOException {
        Path absolute = path.toAbsolutePath().normalize();
        Path existing = absolute;
        while (existing.getParent() != null && !Files.exists(existing)) {
            existing = existing.getParent();
        }
        return existing.toRealPath().resolve(existing.relativize(absolute));
    }

    private static String hash(String text) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(text.getBytes(UTF_8));
            return HexFormat.of().formatHex(digest, 0, 6);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }
}
