package org.shimmer.examples.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.shimmer.runtime.shim.Mount;

/**
 * The root of a {@code run --rootfs DIR} container: an overlay with {@code DIR} as its only lower layer and an upper
 * and a work directory of the container's own in its work directory ({@code <workDir>/rootfs/upper} and
 * {@code /work}, as {@code RunRequest}'s roots are made). The shim mounts it on the bundle's {@code rootfs} and
 * unmounts it with the task's delete; the work directory, upper included, goes with the bundle.
 *
 * <p>A read-only bind of {@code DIR} (the old root) let neither the container write nor runc create its mount
 * points: a directory holding only {@code bin/} failed on {@code /proc} (issue 12). Overlay never writes a lower
 * layer, so {@code DIR} stays exactly as it was.
 */
final class WritableRoot {

    private WritableRoot() {}

    /**
     * Makes the upper and work directories in {@code workDir} and returns the overlay of {@code rootfs} (its real
     * path, so that a symbolic link changed later cannot move the root). Fails naming {@code rootfs} when overlay
     * cannot take its path.
     */
    static Mount overlay(Path rootfs, Path workDir) throws IOException {
        String lower = rootfs.toRealPath().toString();
        for (String path : List.of(lower, workDir.toString())) {
            // overlay splits its options at ',' and its lower layers at ':', and takes '\' as an escape.
            if (path.contains(":") || path.contains(",") || path.contains("\\")) {
                throw new CliException("overlay cannot take the path " + path + ": it holds ':', ','"
                        + " or '\\'");
            }
        }
        Path dir = Files.createDirectory(workDir.resolve("rootfs"),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        Path upper = Files.createDirectory(dir.resolve("upper"));
        // The upper directory is the container's "/": its mode is the root's, whatever the umask.
        Files.setPosixFilePermissions(upper, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path work = Files.createDirectory(dir.resolve("work"));
        // index=off: an index ties a lower to the first upper it was used with, and a second container on the
        // same directory would fail to mount.
        return new Mount("overlay", "overlay", List.of("index=off", "lowerdir=" + lower, "upperdir=" + upper,
                "workdir=" + work));
    }
}
