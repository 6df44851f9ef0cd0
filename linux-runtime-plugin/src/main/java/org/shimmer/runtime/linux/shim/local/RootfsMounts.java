package org.shimmer.runtime.linux.shim.local;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.shim.Mount;

/**
 * Mounts a create request's rootfs mounts onto the bundle's {@code rootfs}, as the containerd shim does, with
 * {@code mount(2)} itself: spawning {@code mount} and {@code umount} cost more than the rest of a short
 * container's lifecycle.
 */
final class RootfsMounts {

    private static final Map<String, Long> FLAGS = Map.of(
            "ro", LinuxCalls.MS_RDONLY,
            "rw", 0L,
            "nosuid", LinuxCalls.MS_NOSUID,
            "nodev", LinuxCalls.MS_NODEV,
            "noexec", LinuxCalls.MS_NOEXEC,
            "bind", LinuxCalls.MS_BIND,
            "rbind", LinuxCalls.MS_BIND | LinuxCalls.MS_REC);

    private RootfsMounts() {}

    /** Mounts each in turn onto {@code target}. On failure, what was mounted is detached again. */
    static void mount(List<Mount> mounts, Path target) throws IOException {
        int done = 0;
        try {
            for (Mount mount : mounts) {
                long flags = 0;
                List<String> data = new ArrayList<>();
                for (String option : mount.options()) {
                    Long flag = FLAGS.get(option);
                    if (flag != null) {
                        flags |= flag;
                    } else {
                        data.add(option);
                    }
                }
                boolean bind = (flags & LinuxCalls.MS_BIND) != 0 || mount.type().equals("bind");
                String type = bind ? null : mount.type();
                String options = data.isEmpty() ? null : String.join(",", data);
                // A bind mount ignores MS_RDONLY on the first call; read-only takes a remount.
                LinuxCalls.mount(mount.source(), target.toString(), type, flags & ~LinuxCalls.MS_RDONLY | (bind ? 0
                        : flags & LinuxCalls.MS_RDONLY), options);
                done++;
                if (bind && (flags & LinuxCalls.MS_RDONLY) != 0) {
                    LinuxCalls.mount(null, target.toString(), null,
                            LinuxCalls.MS_BIND | LinuxCalls.MS_REMOUNT | LinuxCalls.MS_RDONLY, null);
                }
            }
        } catch (IOException | RuntimeException e) {
            if (done > 0) {
                unmount(target);
            }
            throw e;
        }
    }

    /** Detaches everything mounted on {@code target}, submounts included. */
    static void unmount(Path target) throws IOException {
        LinuxCalls.umount2(target.toString(), LinuxCalls.MNT_DETACH);
    }
}
