package org.shimmer.runtime.linux.bundle;

import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.shimmer.runtime.linux.sys.MountTable;
import org.shimmer.runtime.linux.sys.MountTable.MountPoint;

/**
 * What is mounted for one bundle: at or under its bundle directory, its work directory, or a hidden tree of its id
 * ({@code .<id>.deleting-…}, left by a delete cut short). The delete guard, {@code inspect} and {@code forceDelete}
 * all ask here: the last two once looked at the two directories only, so a mount in a hidden tree blocked every
 * delete while {@code inspect} showed none and {@code forceDelete}, the way out, never detached it.
 */
public final class BundleMounts {

    /**
     * One mount point of the bundle.
     *
     * @param point the mount point, as the kernel names it
     * @param inBundleDir whether it is under the bundle's state-root side (else its work-root side)
     * @param tree the bundle or work directory, or the hidden tree, it is at or under
     */
    public record Mounted(MountPoint point, boolean inBundleDir, Path tree) {}

    private BundleMounts() {}

    /** The mounts of the bundle at {@code bundleDir} and {@code workDir} now, shallowest first. Blocking. */
    public static List<Mounted> of(Path bundleDir, Path workDir) throws IOException {
        List<MountPoint> all = MountTable.mountPoints();
        List<Mounted> found = new ArrayList<>();
        for (Path dir : List.of(bundleDir, workDir)) {
            Path parent;
            try {
                // mountinfo names real paths: a state root reached through a link is compared as the kernel has it.
                parent = dir.toAbsolutePath().getParent().toRealPath();
            } catch (NoSuchFileException absent) {
                continue;
            }
            String id = dir.getFileName().toString();
            for (MountPoint point : MountTable.atOrUnder(all, parent)) {
                String top = point.firstNameBelow(parent);
                if (top.equals(id) || BundleStore.isHiddenTreeOf(top, id)) {
                    found.add(new Mounted(point, dir.equals(bundleDir), parent.resolve(top)));
                }
            }
        }
        found.sort(Comparator.comparingInt(mounted -> mounted.point().path().getNameCount()));
        return found;
    }

    /** {@link #of}'s mount points as paths, shallowest first (reversed, an unmount order). Blocking. */
    public static List<Path> paths(Path bundleDir, Path workDir) throws IOException {
        return of(bundleDir, workDir).stream().map(mounted -> mounted.point().path()).toList();
    }
}
