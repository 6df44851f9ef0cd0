package org.shimmer.runtime.linux.shim.local;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.linux.bundle.RootfsDirectory;
import org.shimmer.runtime.linux.bundle.WorkFiles;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.shim.Mount;

/**
 * Mounts a create request's rootfs mounts onto the bundle's {@code rootfs} as containerd's {@code mount_linux.go}
 * does, with {@code mount(2)} itself (spawning {@code mount} cost more than a short container's lifecycle), and
 * undoes exactly those mounts.
 *
 * <p>Per mount: the mount call with every non-propagation flag and the file-system data; then, for a propagation
 * word, a second call that changes only the propagation type (the kernel refuses it mixed with other flags); then,
 * for a bind, a remount carrying every per-mount flag. The kernel ignores all but {@code MS_REC} on a bind's first
 * call, and a remount sets the per-mount flags to exactly those it is given: the old remount passed only
 * {@code MS_RDONLY}, and {@code ro,nosuid,nodev,noexec} came out {@code ro} only. The remount also keeps the
 * {@code nosuid}/{@code nodev}/{@code noexec}/{@code ro} the bound source mount had unless a word cleared them, so
 * {@code ro} on a bind of a {@code nosuid} directory does not make it {@code suid}. Unlike containerd, which
 * remounts only a read-only bind, any per-mount flag on a bind is applied: a flag asked for is never dropped.
 *
 * <p>Undo removes only mounts this class made. Before each is undone, the mount id now on the target
 * ({@code statx} {@code STATX_MNT_ID_UNIQUE}, never reused) must be one recorded when it was mounted: one
 * {@code umount2} undid one of several stacked mounts, and "unmount until nothing is mounted" (containerd's
 * {@code UnmountAll}) would also remove a user's mount on the {@code rootfs} directory itself. The ids are kept in
 * the work directory ({@link #FILE}), so a runtime after a reload undoes them too.
 */
public final class RootfsMounts {

    static final String FILE = "rootfs-mounts.json";
    /** The most bytes of data {@code mount(2)} takes: one page, NUL included. */
    static final int MAX_DATA = 4095;
    private static final String LOWERDIR = "lowerdir=";

    /** The mounts made on the target, bottom first, by mount id. */
    record Layers(List<Long> ids) {}

    private static final long STATUS_FLAGS = LinuxCalls.MS_RDONLY | LinuxCalls.MS_NOSUID | LinuxCalls.MS_NODEV
            | LinuxCalls.MS_NOEXEC;

    private RootfsMounts() {}

    /**
     * Mounts each of {@code mounts} in turn onto {@code target} and records them in {@code workDir}. Every option
     * is checked before anything is mounted; on failure, what was mounted is undone again. Mounts a previous
     * create recorded and nobody undid are undone first.
     */
    static void mount(List<Mount> mounts, Path target, Path workDir) throws IOException {
        List<MountOptions> parsed = checked(mounts);
        unmount(target, workDir);
        if (mounts.isEmpty()) {
            return;
        }
        int directory = RootfsDirectory.open(target);
        List<Long> ids = new ArrayList<>();
        try {
            for (int i = 0; i < mounts.size(); i++) {
                mountOne(mounts.get(i), parsed.get(i), target, RootfsDirectory.target(directory), ids);
            }
            WorkFiles.write(workDir, FILE, new Layers(ids));
        } catch (IOException | RuntimeException e) {
            try {
                undo(target, ids);
            } catch (IOException | RuntimeException undoFailed) {
                e.addSuppressed(undoFailed);
            }
            throw e;
        } finally {
            LinuxCalls.close(directory);
        }
    }

    /** Undoes the mounts recorded in {@code workDir}, if any, and forgets them. */
    public static void unmount(Path target, Path workDir) throws IOException {
        Optional<Layers> layers = WorkFiles.read(workDir, FILE, Layers.class);
        if (layers.isPresent()) {
            undo(target, layers.get().ids());
        }
        WorkFiles.remove(workDir, FILE);
    }

    private static List<MountOptions> checked(List<Mount> mounts) {
        List<MountOptions> parsed = new ArrayList<>();
        for (Mount mount : mounts) {
            MountOptions options = MountOptions.parse(mount);
            // A remount changes the mount below it: only one this create made may be changed, never a user's.
            if (options.remount() && parsed.stream().allMatch(MountOptions::remount)) {
                throw new InvalidSpecException("rootfs mount " + mount.type() + " " + mount.source() + " "
                        + mount.options() + ": remount of a mount this create did not make");
            }
            parsed.add(options);
        }
        return parsed;
    }

    /**
     * One mount: made through {@code directory} (the checked rootfs's descriptor; the kernel stacks it on the top
     * mount there), then read and changed by path, which names the top mount, the one just made.
     */
    private static void mountOne(Mount mount, MountOptions options, Path target, String directory, List<Long> ids)
            throws IOException {
        String to = target.toString();
        if (!options.bind()) {
            mountWithData(mount, options, directory);
        } else if (!options.remount()) {
            LinuxCalls.mount(mount.source(), directory, null, options.flags(), null);
        }
        if (!options.remount()) {
            try {
                ids.add(LinuxCalls.mountId(target));
            } catch (IOException | RuntimeException e) {
                // Mounted but unrecorded: undo it now, or nothing ever would.
                LinuxCalls.umount2(to, LinuxCalls.MNT_DETACH | LinuxCalls.UMOUNT_NOFOLLOW);
                throw e;
            }
        }
        if (options.propagation() != 0) {
            LinuxCalls.mount(null, to, null, options.propagation(), null);
        }
        if (options.bind()) {
            long current = LinuxCalls.mountFlags(target) & STATUS_FLAGS;
            long kept = current & ~options.cleared();
            long wanted = options.flags() & MountOptions.PER_MOUNT | kept;
            if (wanted != current) {
                LinuxCalls.mount(null, to, null, LinuxCalls.MS_BIND | LinuxCalls.MS_REMOUNT | wanted, null);
            }
        }
    }

    /**
     * The mount of a file system with data. An overlay whose data does not fit in the page {@code mount(2)} takes
     * (an image of many layers) is mounted as containerd's shim mounts it: its lowers named relative to the
     * directory they share, from that directory ({@link LinuxCalls#mountFrom}). The kernel cut longer data short,
     * and the mount failed with a bare {@code EINVAL}.
     */
    private static void mountWithData(Mount mount, MountOptions options, String to) throws IOException {
        String data = options.data();
        if (data == null || !mount.type().equals("overlay") || data.getBytes(LinuxCalls.FILE_NAMES).length
                <= MAX_DATA) {
            LinuxCalls.mount(mount.source(), to, mount.type(), options.flags(), data);
            return;
        }
        List<String> words = new ArrayList<>(List.of(data.split(",")));
        int index = -1;
        for (int i = 0; i < words.size() && index < 0; i++) {
            index = words.get(i).startsWith(LOWERDIR) ? i : -1;
        }
        List<Path> lowers = index < 0 ? List.of() : Arrays.stream(words.get(index).substring(LOWERDIR.length())
                .split(":")).map(Path::of).toList();
        boolean absolute = !lowers.isEmpty() && lowers.stream().allMatch(Path::isAbsolute);
        Path common = absolute ? lowers.getFirst().getParent() : null;
        for (Path lower : lowers) {
            while (common != null && (!lower.startsWith(common) || lower.equals(common))) {
                common = common.getParent();
            }
        }
        if (common == null || common.getParent() == null) {
            // Nothing shared to name them from: the kernel's error stands.
            LinuxCalls.mount(mount.source(), to, mount.type(), options.flags(), data);
            return;
        }
        Path from = common;
        words.set(index, LOWERDIR + String.join(":", lowers.stream().map(lower -> from.relativize(lower).toString())
                .toList()));
        LinuxCalls.mountFrom(from, mount.source(), to, mount.type(), options.flags(), String.join(",", words));
    }

    /** Unmounts the top mount of {@code target} while it is one of {@code ids}, at most once per id. */
    private static void undo(Path target, List<Long> ids) throws IOException {
        for (int i = 0; i < ids.size(); i++) {
            long top;
            try {
                top = LinuxCalls.mountId(target);
            } catch (LinuxCalls.ErrnoException e) {
                if (e.errno() == LinuxCalls.ENOENT) {
                    return;
                }
                throw e;
            }
            if (!ids.contains(top)) {
                return;
            }
            LinuxCalls.umount2(target.toString(), LinuxCalls.MNT_DETACH | LinuxCalls.UMOUNT_NOFOLLOW);
        }
    }
}
