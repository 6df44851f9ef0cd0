package org.shimmer.runtime.linux.bundle;

import java.io.IOException;
import java.nio.file.Path;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.linux.sys.LinuxCalls;

/**
 * The bundle's {@code rootfs} as the target of a create's mounts. {@code mount(2)} follows a symbolic link in its
 * target, and runc refuses a rootfs that is one only once the mounts are made: a create onto a bundle whose rootfs
 * had been replaced by a link mounted its image over the directory the link named (a user's), and left it there,
 * as the undo never follows a link. So a rootfs that is not a directory itself is refused before anything is
 * mounted, and the local shim mounts through the descriptor it checked.
 */
public final class RootfsDirectory {

    private RootfsDirectory() {}

    /**
     * Opens {@code rootfs} without following a link ({@code O_PATH}): a descriptor to mount on, naming exactly the
     * directory checked. Blocking.
     *
     * @throws FailedPreconditionException when it is a symbolic link or not a directory
     */
    public static int open(Path rootfs) throws IOException {
        try {
            return LinuxCalls.open(rootfs, LinuxCalls.O_PATH | LinuxCalls.O_NOFOLLOW | LinuxCalls.O_DIRECTORY
                    | LinuxCalls.O_CLOEXEC);
        } catch (LinuxCalls.ErrnoException e) {
            if (e.errno() == LinuxCalls.ELOOP || e.errno() == LinuxCalls.ENOTDIR) {
                throw new FailedPreconditionException("rootfs " + rootfs + " is a symbolic link or not a directory;"
                        + " nothing was mounted on it", e);
            }
            throw e;
        }
    }

    /**
     * Refuses a {@code rootfs} that is a symbolic link or not a directory, as {@link #open} does; one that is absent
     * is left for the shim, which makes it. Blocking.
     */
    public static void requireUnlessAbsent(Path rootfs) throws IOException {
        try {
            LinuxCalls.close(open(rootfs));
        } catch (LinuxCalls.ErrnoException e) {
            if (e.errno() != LinuxCalls.ENOENT) {
                throw e;
            }
        }
    }

    /** The target {@code mount(2)} takes to mount on the very directory {@code fd} (from {@link #open}) names. */
    public static String target(int fd) {
        return "/proc/self/fd/" + fd;
    }
}
