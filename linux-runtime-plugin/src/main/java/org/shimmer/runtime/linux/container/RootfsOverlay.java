package org.shimmer.runtime.linux.container;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.shim.Mount;

/**
 * A container's writable root: an {@code overlay} mount whose lower layers are read-only directories (a rootfs
 * directory, or an image's layers) and whose upper and work directories are the container's own, in its work
 * directory: {@code <workDir>/rootfs/upper} and {@code <workDir>/rootfs/work}. The shim mounts it on the bundle's
 * {@code rootfs} (the local shim with {@code mount(2)}, {@code containerd-shim-runc-v2} itself) and unmounts it with
 * the task's delete, before the work directory goes with the bundle.
 *
 * <p>Invariants: overlay never writes a lower layer, so the caller's directory and shared image layers stay as
 * they are; the upper and work directories are made here, exclusively, and so are ours to remove; a bundle-rootfs
 * read-only bind (the old root) let runc create no mount point, and a bin-only directory failed on {@code /proc}.
 */
final class RootfsOverlay {

    /** The directory of the work directory holding the upper and work directories. */
    static final String DIR = "rootfs";
    static final String UPPER = "upper";
    static final String WORK = "work";
    /**
     * The most bytes of mount data {@code mount(2)} takes: one page, NUL included. The kernel cuts longer data
     * short and the overlay then fails with a bare {@code EINVAL}, or mounts fewer lowers than asked.
     */
    static final int MAX_DATA = 4095;

    /** The root of the container's file system, as a fresh directory tree's root is. */
    private static final Set<PosixFilePermission> UPPER_MODE = PosixFilePermissions.fromString("rwxr-xr-x");
    private static final Set<PosixFilePermission> PRIVATE_MODE = PosixFilePermissions.fromString("rwx------");

    private RootfsOverlay() {}

    /**
     * The overlay of {@code lowers} (top first) under the upper and work directories of {@code workDir}, checked
     * but not made.
     *
     * @param owner the container, named in errors
     * @throws InvalidSpecException when a lower's path cannot be given to overlay, or the data needs more than
     *     {@link #MAX_DATA} bytes (naming the layer count)
     */
    static Mount mount(String owner, List<Path> lowers, Path workDir) {
        if (lowers.isEmpty()) {
            throw new InvalidSpecException("rootfs of container " + owner + ": no lower layer");
        }
        List<String> joined = new ArrayList<>(lowers.size());
        for (Path lower : lowers) {
            joined.add(checked(owner, lower));
        }
        Path dir = workDir.resolve(DIR);
        List<String> options = List.of(
                // An index would tie each lower to the first upper it was used with: a lower shared by two
                // containers, or used again after a delete, would fail the mount with ESTALE.
                "index=off",
                "lowerdir=" + String.join(":", joined),
                "upperdir=" + checked(owner, dir.resolve(UPPER)),
                "workdir=" + checked(owner, dir.resolve(WORK)));
        int bytes = String.join(",", options).getBytes(StandardCharsets.UTF_8).length;
        if (bytes > MAX_DATA) {
            throw new InvalidSpecException("rootfs of container " + owner + ": an overlay of " + lowers.size()
                    + " layers needs " + bytes + " bytes of mount options, more than the " + MAX_DATA
                    + " mount(2) takes; use fewer layers or shorter layer paths");
        }
        return new Mount("overlay", "overlay", options);
    }

    /**
     * Makes the upper and work directories in {@code workDir} (which must not hold them yet) and returns the
     * overlay. Blocking.
     */
    static Mount prepare(String owner, List<Path> lowers, Path workDir) throws IOException {
        Mount mount = mount(owner, lowers, workDir);
        Path dir = workDir.resolve(DIR);
        createDirectory(dir, PRIVATE_MODE);
        createDirectory(dir.resolve(UPPER), UPPER_MODE);
        createDirectory(dir.resolve(WORK), PRIVATE_MODE);
        return mount;
    }

    private static void createDirectory(Path dir, Set<PosixFilePermission> mode) throws IOException {
        Files.createDirectory(dir);
        // The umask filtered the mode of the create.
        Files.setPosixFilePermissions(dir, mode);
    }

    /**
     * A path as overlay's options can carry it: the kernel splits options at {@code ,}, lowers at {@code :} and
     * reads {@code \} as an escape, so a path holding one would name other directories.
     */
    private static String checked(String owner, Path path) {
        String text = path.toString();
        for (char c : new char[] {',', ':', '\\'}) {
            if (text.indexOf(c) >= 0) {
                throw new InvalidSpecException("rootfs of container " + owner + ": path " + text + " holds '" + c
                        + "', which an overlay mount cannot name");
            }
        }
        return text;
    }
}
