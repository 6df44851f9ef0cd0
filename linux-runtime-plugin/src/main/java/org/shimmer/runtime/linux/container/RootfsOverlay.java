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
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.linux.bundle.StorageErrors;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.shim.Mount;

/**
 * A container's writable root: an {@code overlay} mount whose lower layers are read-only directories (a rootfs
 * directory, or an image's layers) and whose upper and work directories are the container's own, in its work
 * directory: {@code <workDir>/rootfs/upper} and {@code <workDir>/rootfs/work}, the lowers named by links in
 * {@code <workDir>/rootfs/l}. The shim mounts it on the bundle's {@code rootfs} (the local shim with
 * {@code mount(2)}, {@code containerd-shim-runc-v2} itself) and unmounts it with the task's delete, before the
 * work directory goes with the bundle, whose delete removes the links and never follows one.
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
    /** The directory of the links to the lower layers, {@code l/0} the top one. */
    static final String LINKS = "l";
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
     * but not made. Its lowers are the links {@code <workDir>/rootfs/l/<n>} to them ({@code n} from 0 at the top,
     * as docker's overlay2 does): a shim whose data does not fit in a page names them relative to {@code l/}, a
     * few bytes each, where the layer paths themselves made 35 layers of an image the most that could run. A lower
     * path never appears in the data, so it may hold any character.
     *
     * @param owner the container, named in errors
     * @throws InvalidSpecException when the work directory's path cannot be given to overlay, or the data needs
     *     more than {@link #MAX_DATA} bytes even with relative lowers (naming the layer count)
     */
    static Mount mount(String owner, List<Path> lowers, Path workDir) {
        if (lowers.isEmpty()) {
            throw new InvalidSpecException("rootfs of container " + owner + ": no lower layer");
        }
        Path dir = workDir.resolve(DIR);
        List<String> links = new ArrayList<>(lowers.size());
        List<String> relative = new ArrayList<>(lowers.size());
        for (int n = 0; n < lowers.size(); n++) {
            links.add(checked(owner, dir.resolve(LINKS).resolve(Integer.toString(n))));
            relative.add(Integer.toString(n));
        }
        String upper = "upperdir=" + checked(owner, dir.resolve(UPPER));
        String work = "workdir=" + checked(owner, dir.resolve(WORK));
        // An index would tie each lower to the first upper it was used with: a lower shared by two containers, or
        // used again after a delete, would fail the mount with ESTALE.
        List<String> options = List.of("index=off", "lowerdir=" + String.join(":", links), upper, work);
        int bytes = Math.min(bytes(options), bytes(List.of("index=off", "lowerdir=" + String.join(":", relative),
                upper, work)));
        if (bytes > MAX_DATA) {
            throw new InvalidSpecException("rootfs of container " + owner + ": an overlay of " + lowers.size()
                    + " layers needs " + bytes + " bytes of mount options, more than the " + MAX_DATA
                    + " mount(2) takes; use fewer layers or a shorter work root");
        }
        return new Mount("overlay", "overlay", options);
    }

    private static int bytes(List<String> options) {
        return String.join(",", options).getBytes(StandardCharsets.UTF_8).length;
    }

    /**
     * Makes the upper and work directories and the links to the lowers in {@code workDir} (which must not hold
     * them yet) and returns the overlay. Blocking. The links go with the work directory, whose delete removes a
     * link and never follows it.
     */
    static Mount prepare(String owner, List<Path> lowers, Path workDir) throws IOException {
        Mount mount = mount(owner, lowers, workDir);
        Path dir = workDir.resolve(DIR);
        createDirectory(dir, PRIVATE_MODE);
        createDirectory(dir.resolve(UPPER), UPPER_MODE);
        createDirectory(dir.resolve(WORK), PRIVATE_MODE);
        Path links = createDirectory(dir.resolve(LINKS), PRIVATE_MODE);
        for (int n = 0; n < lowers.size(); n++) {
            Files.createSymbolicLink(links.resolve(Integer.toString(n)), lowers.get(n));
        }
        return mount;
    }

    private static Path createDirectory(Path dir, Set<PosixFilePermission> mode) throws IOException {
        Files.createDirectory(dir);
        // The umask filtered the mode of the create.
        Files.setPosixFilePermissions(dir, mode);
        return dir;
    }

    /**
     * Refuses a work directory whose file system cannot hold an overlay's upper directory: overlayfs itself, the
     * root of a Docker or CI container, where every mount failed with a bare {@code EINVAL} after the bundle and
     * shim were made. {@code workDir} need not exist: its nearest existing directory is asked. Blocking.
     *
     * @param workRoot the configured work root, named in the error
     * @throws FailedPreconditionException naming the work root and what to do
     */
    static void checkUpperFileSystem(String owner, Path workRoot, Path workDir) {
        Path existing = workDir.toAbsolutePath();
        while (existing.getParent() != null && !Files.isDirectory(existing)) {
            existing = existing.getParent();
        }
        long type;
        try {
            type = LinuxCalls.fileSystemType(existing);
        } catch (IOException e) {
            throw StorageErrors.typed("check the file system of the work root " + workRoot + " for container "
                    + owner, e);
        }
        if (type == LinuxCalls.OVERLAYFS_MAGIC) {
            throw new FailedPreconditionException("rootfs of container " + owner + ": the work root " + workRoot
                    + " is on overlayfs (the root of a Docker or CI container?), which cannot hold the upper"
                    + " directory of a container's overlay root; configure a work root on a real file system (a"
                    + " volume, a bind mount or a tmpfs)");
        }
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
