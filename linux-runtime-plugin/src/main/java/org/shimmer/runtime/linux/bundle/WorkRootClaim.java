package org.shimmer.runtime.linux.bundle;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.shimmer.runtime.FailedPreconditionException;

/**
 * The state root a work root serves, recorded in it ({@value #FILE}) by the first runtime that makes or removes
 * anything there. A work directory is found by namespace and id alone, so two state roots given one work root
 * took each other's work directories: a delete of a bundle one of them never had removed the other's work
 * directory with its records, and a forced delete read the other's {@code launch.json} and killed its container.
 * A runtime whose state root is not the recorded one is refused before it touches the work root.
 */
public final class WorkRootClaim {

    /** The record's name: a dot, so that no namespace is ever named so. */
    public static final String FILE = ".shimmer-state-root";

    /** Work roots already found to serve their state root in this JVM: one read per pair, not per call. */
    private static final Set<String> CONFIRMED = ConcurrentHashMap.newKeySet();

    private WorkRootClaim() {}

    /**
     * Refuses with {@link FailedPreconditionException} when {@code workRoot} serves another state root than
     * {@code stateRoot}; records {@code stateRoot} in it when it names none yet. A work root that does not exist
     * serves nobody yet: nothing is made. Blocking.
     */
    public static void require(Path workRoot, Path stateRoot) throws IOException {
        String key = workRoot + "\0" + stateRoot;
        if (CONFIRMED.contains(key)) {
            return;
        }
        Path record = workRoot.resolve(FILE);
        String recorded = read(record);
        if (recorded == null) {
            if (!Files.isDirectory(workRoot)) {
                return;
            }
            recorded = claim(record, stateRoot);
            if (recorded == null) {
                return;
            }
        }
        if (!recorded.equals(stateRoot.toString())) {
            throw new FailedPreconditionException("work root " + workRoot + " serves state root " + recorded
                    + " (recorded in " + record + "), not " + stateRoot + ": give each state root a work root of"
                    + " its own, or both the same roots as before");
        }
        CONFIRMED.add(key);
    }

    /**
     * Writes the record unless another runtime wrote it first; what the record says then, or null when it cannot be
     * written (a full or read-only work root): the claim is tried again by the next call, and a delete that frees
     * space must not be refused for want of it.
     */
    private static String claim(Path record, Path stateRoot) throws IOException {
        Path partial = record.resolveSibling(FILE + "." + ProcessHandle.current().pid() + "."
                + Thread.currentThread().threadId() + ".partial");
        try {
            Files.write(partial, (stateRoot + "\n").getBytes(StandardCharsets.UTF_8), StandardOpenOption.CREATE_NEW,
                    StandardOpenOption.WRITE);
            Files.setPosixFilePermissions(partial, PosixFilePermissions.fromString("rw-r--r--"));
            // A link fails if the record exists: of two runtimes claiming at once, one wins and the other reads it.
            Files.createLink(record, partial);
        } catch (FileAlreadyExistsException claimedMeanwhile) {
            String recorded = read(record);
            if (recorded == null) {
                throw claimedMeanwhile;
            }
            return recorded;
        } catch (FileSystemException unwritable) {
            return null;
        } finally {
            Files.deleteIfExists(partial);
        }
        return stateRoot.toString();
    }

    private static String read(Path record) throws IOException {
        try {
            return Files.readString(record, StandardCharsets.UTF_8).strip();
        } catch (NoSuchFileException absent) {
            return null;
        }
    }
}
