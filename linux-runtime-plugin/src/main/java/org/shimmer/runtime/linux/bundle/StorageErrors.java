package org.shimmer.runtime.linux.bundle;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.util.List;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.ResourceExhaustedException;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.bundle.DirectoryTrees.MountCrossingException;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.LinuxCalls.ErrnoException;

/**
 * Maps a failed file operation on a bundle to the error types the API promises, keeping the failure as the cause.
 *
 * <ul>
 *   <li>the machine ran out of something ({@code ENOSPC}, {@code EDQUOT}, {@code EMFILE}, {@code ENFILE},
 *       {@code ENOMEM}): {@link ResourceExhaustedException}; space is reported as "no space left";</li>
 *   <li>the file system is not in a state that allows the operation (a mount in the way, read-only, permission,
 *       a file where a directory belongs, …): {@link FailedPreconditionException};</li>
 *   <li>anything else, such as {@code EIO}: {@link UnavailableException}, as the storage cannot be used now.</li>
 * </ul>
 * The JDK reports most of these as a {@link FileSystemException} whose reason is {@code strerror}'s text, which is
 * how the errno is recognised when no {@link ErrnoException} carries it.
 */
public final class StorageErrors {

    private static final List<Integer> EXHAUSTED = List.of(
            LinuxCalls.ENOSPC, LinuxCalls.EDQUOT, LinuxCalls.EMFILE, LinuxCalls.ENFILE, LinuxCalls.ENOMEM);
    private static final List<Integer> PRECONDITION = List.of(
            LinuxCalls.EPERM, LinuxCalls.ENOENT, LinuxCalls.EACCES, LinuxCalls.EBUSY, LinuxCalls.EEXIST,
            LinuxCalls.EXDEV, LinuxCalls.ENOTDIR, LinuxCalls.EISDIR, LinuxCalls.EROFS, LinuxCalls.ENOTEMPTY,
            LinuxCalls.ELOOP);
    private static final int UNKNOWN = 0;

    private StorageErrors() {}

    /**
     * The typed error for {@code failure}.
     *
     * @param what the operation and its target, e.g. "create bundle ns/c1"
     * @param failure the failure; its message is appended, and it becomes the cause
     */
    public static ShimmerException typed(String what, IOException failure) {
        String detail = failure.getMessage();
        if (failure instanceof MountCrossingException) {
            return new FailedPreconditionException("failed to " + what + ": " + detail, failure);
        }
        int errno = errno(failure);
        if (errno == LinuxCalls.ENOSPC || errno == LinuxCalls.EDQUOT) {
            return new ResourceExhaustedException("failed to " + what + ": no space left: " + detail, failure);
        }
        if (EXHAUSTED.contains(errno)) {
            return new ResourceExhaustedException("failed to " + what + ": " + detail, failure);
        }
        if (PRECONDITION.contains(errno)) {
            return new FailedPreconditionException("failed to " + what + ": " + detail, failure);
        }
        return new UnavailableException("failed to " + what + ": " + detail, failure);
    }

    /** The errno behind {@code failure} or one of its causes; {@link #UNKNOWN} when none is recognised. */
    static int errno(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            int errno = switch (t) {
                case ErrnoException e -> e.errno();
                case NoSuchFileException e -> LinuxCalls.ENOENT;
                case FileAlreadyExistsException e -> LinuxCalls.EEXIST;
                case AccessDeniedException e -> LinuxCalls.EACCES;
                case NotDirectoryException e -> LinuxCalls.ENOTDIR;
                case DirectoryNotEmptyException e -> LinuxCalls.ENOTEMPTY;
                case FileSystemException e -> fromText(e.getReason());
                case IOException e -> fromText(e.getMessage());
                default -> UNKNOWN;
            };
            if (errno != UNKNOWN) {
                return errno;
            }
        }
        return UNKNOWN;
    }

    private static int fromText(String text) {
        if (text == null) {
            return UNKNOWN;
        }
        for (List<Integer> group : List.of(EXHAUSTED, PRECONDITION)) {
            for (int errno : group) {
                if (text.endsWith(LinuxCalls.strerror(errno))) {
                    return errno;
                }
            }
        }
        return UNKNOWN;
    }
}
