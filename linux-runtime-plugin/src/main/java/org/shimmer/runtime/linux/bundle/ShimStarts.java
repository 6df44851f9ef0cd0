package org.shimmer.runtime.linux.bundle;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * Keeps a bundle's delete and the start of a shim for it apart, within this class loader: a delete refuses while a
 * start runs, and a start refuses while a delete runs. The delete's guard finds a shim by its processes, and a start
 * has none until {@code shim start} runs: a delete that looked just before that removed the bundle under the
 * daemon it then forked, which died a zombie of the JVM nobody watched (a CI run of the cancelled-start test).
 */
public final class ShimStarts {

    private static final Object LOCK = new Object();
    /** Shim starts in flight, by bundle directory; guarded by {@link #LOCK}. */
    private static final Map<Path, Integer> STARTING = new HashMap<>();
    /** Deletes in flight, by bundle directory (two may overlap: a retry, a force delete); guarded by {@link #LOCK}. */
    private static final Map<Path, Integer> DELETING = new HashMap<>();

    private ShimStarts() {}

    /** Marks a shim start for {@code bundleDir} begun; false, and nothing marked, while the bundle is being deleted. */
    public static boolean begin(Path bundleDir) {
        synchronized (LOCK) {
            if (DELETING.containsKey(bundleDir)) {
                return false;
            }
            STARTING.merge(bundleDir, 1, Integer::sum);
            return true;
        }
    }

    /** Marks a shim start for {@code bundleDir} ended, however it ended. */
    public static void end(Path bundleDir) {
        synchronized (LOCK) {
            STARTING.computeIfPresent(bundleDir, (dir, count) -> count == 1 ? null : count - 1);
        }
    }

    /** Marks a delete of {@code bundleDir} begun; false, and nothing marked, while a shim is being started for it. */
    static boolean beginDelete(Path bundleDir) {
        synchronized (LOCK) {
            if (STARTING.containsKey(bundleDir)) {
                return false;
            }
            DELETING.merge(bundleDir, 1, Integer::sum);
            return true;
        }
    }

    /** Marks a delete of {@code bundleDir} ended, however it ended. */
    static void endDelete(Path bundleDir) {
        synchronized (LOCK) {
            DELETING.computeIfPresent(bundleDir, (dir, count) -> count == 1 ? null : count - 1);
        }
    }
}
