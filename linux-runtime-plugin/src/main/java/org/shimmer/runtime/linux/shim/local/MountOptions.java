package org.shimmer.runtime.linux.shim.local;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.shim.Mount;

/**
 * One rootfs mount's option words, read as containerd's {@code parseMountOptions} reads fstab-style options: each
 * word of the flag table sets or clears its {@code mount(2)} flag, a later word winning over an earlier one;
 * propagation words are kept apart, for the separate {@code mount(2)} call the kernel needs for them.
 *
 * <p>Unlike containerd, a word neither in the table nor file-system data is an error, not data: our old table
 * passed {@code relatime} or {@code private} to the file system as data, which failed the mount with a bare
 * {@code EINVAL} or, on a file system that skips unknown options, silently did nothing. File-system data is {@code key=value}, or a bare word listed for the
 * mount's type in {@link #BARE_DATA}; a bind takes no data at all (the kernel ignores it). An option holding a
 * comma is refused: the kernel would split it and read the pieces as further options.
 *
 * @param flags the flags for the mount call (never a propagation flag)
 * @param cleared the flags a clearing word ({@code rw}, {@code suid}, {@code dev}, {@code exec}, …) asked off, and
 *     no later word set again
 * @param propagation the propagation type for the second call ({@code MS_PRIVATE}, …, maybe with {@code MS_REC}),
 *     0 for none
 * @param data the file-system data, comma-joined, null for none
 */
record MountOptions(long flags, long cleared, long propagation, String data) {

    /** A word's flag, and whether the word clears it rather than sets it. */
    private record Word(long flag, boolean clears) {}

    private static final Map<String, Word> FLAGS = Map.ofEntries(
            Map.entry("async", new Word(LinuxCalls.MS_SYNCHRONOUS, true)),
            Map.entry("atime", new Word(LinuxCalls.MS_NOATIME, true)),
            Map.entry("bind", new Word(LinuxCalls.MS_BIND, false)),
            Map.entry("defaults", new Word(0, false)),
            Map.entry("dev", new Word(LinuxCalls.MS_NODEV, true)),
            Map.entry("diratime", new Word(LinuxCalls.MS_NODIRATIME, true)),
            Map.entry("dirsync", new Word(LinuxCalls.MS_DIRSYNC, false)),
            Map.entry("exec", new Word(LinuxCalls.MS_NOEXEC, true)),
            Map.entry("mand", new Word(LinuxCalls.MS_MANDLOCK, false)),
            Map.entry("noatime", new Word(LinuxCalls.MS_NOATIME, false)),
            Map.entry("nodev", new Word(LinuxCalls.MS_NODEV, false)),
            Map.entry("nodiratime", new Word(LinuxCalls.MS_NODIRATIME, false)),
            Map.entry("noexec", new Word(LinuxCalls.MS_NOEXEC, false)),
            Map.entry("nomand", new Word(LinuxCalls.MS_MANDLOCK, true)),
            Map.entry("norelatime", new Word(LinuxCalls.MS_RELATIME, true)),
            Map.entry("nostrictatime", new Word(LinuxCalls.MS_STRICTATIME, true)),
            Map.entry("nosuid", new Word(LinuxCalls.MS_NOSUID, false)),
            Map.entry("rbind", new Word(LinuxCalls.MS_BIND | LinuxCalls.MS_REC, false)),
            Map.entry("relatime", new Word(LinuxCalls.MS_RELATIME, false)),
            Map.entry("remount", new Word(LinuxCalls.MS_REMOUNT, false)),
            Map.entry("ro", new Word(LinuxCalls.MS_RDONLY, false)),
            Map.entry("rw", new Word(LinuxCalls.MS_RDONLY, true)),
            Map.entry("strictatime", new Word(LinuxCalls.MS_STRICTATIME, false)),
            Map.entry("suid", new Word(LinuxCalls.MS_NOSUID, true)),
            Map.entry("sync", new Word(LinuxCalls.MS_SYNCHRONOUS, false)));

    /** The kernel takes one propagation type per call; the last word given wins. */
    private static final Map<String, Long> PROPAGATION = Map.of(
            "private", LinuxCalls.MS_PRIVATE,
            "rprivate", LinuxCalls.MS_PRIVATE | LinuxCalls.MS_REC,
            "shared", LinuxCalls.MS_SHARED,
            "rshared", LinuxCalls.MS_SHARED | LinuxCalls.MS_REC,
            "slave", LinuxCalls.MS_SLAVE,
            "rslave", LinuxCalls.MS_SLAVE | LinuxCalls.MS_REC,
            "unbindable", LinuxCalls.MS_UNBINDABLE,
            "runbindable", LinuxCalls.MS_UNBINDABLE | LinuxCalls.MS_REC);

    /** Bare words (no {@code =}) that are file-system data, per type; any other type takes only key=value data. */
    static final Map<String, Set<String>> BARE_DATA = Map.of(
            "overlay", Set.of("userxattr", "volatile"),
            "tmpfs", Set.of("noswap", "inode32", "inode64"));

    /** The flags that live on a mount rather than on its file system: a bind applies them only on a remount. */
    static final long PER_MOUNT = LinuxCalls.MS_RDONLY | LinuxCalls.MS_NOSUID | LinuxCalls.MS_NODEV
            | LinuxCalls.MS_NOEXEC | LinuxCalls.MS_NOATIME | LinuxCalls.MS_NODIRATIME | LinuxCalls.MS_RELATIME
            | LinuxCalls.MS_STRICTATIME;

    /** Reads {@code mount}'s options; a word that is neither a flag nor data for its type fails, naming both. */
    static MountOptions parse(Mount mount) {
        long flags = mount.type().equals("bind") ? LinuxCalls.MS_BIND : 0;
        long cleared = 0;
        long propagation = 0;
        List<String> data = new ArrayList<>();
        for (String option : mount.options()) {
            Word word = FLAGS.get(option);
            Long type = PROPAGATION.get(option);
            if (option.contains(",")) {
                throw invalid(mount, "option \"" + option + "\" holds a comma; give one option per entry");
            } else if (word != null && word.clears()) {
                flags &= ~word.flag();
                cleared |= word.flag();
            } else if (word != null) {
                flags |= word.flag();
                cleared &= ~word.flag();
            } else if (type != null) {
                propagation = type;
            } else if (isData(mount.type(), option)) {
                data.add(option);
            } else {
                throw invalid(mount, "unknown mount option \"" + option + "\"");
            }
        }
        boolean bind = (flags & LinuxCalls.MS_BIND) != 0;
        if (bind && !data.isEmpty()) {
            throw invalid(mount, "a bind takes no file-system data, got \"" + String.join(",", data) + "\"");
        }
        return new MountOptions(flags, cleared, propagation, data.isEmpty() ? null : String.join(",", data));
    }

    boolean bind() {
        return (flags & LinuxCalls.MS_BIND) != 0;
    }

    boolean remount() {
        return (flags & LinuxCalls.MS_REMOUNT) != 0;
    }

    private static boolean isData(String type, String option) {
        int equals = option.indexOf('=');
        if (equals > 0) {
            return true;
        }
        return equals < 0 && BARE_DATA.getOrDefault(type, Set.of()).contains(option);
    }

    private static InvalidSpecException invalid(Mount mount, String why) {
        return new InvalidSpecException("rootfs mount " + mount.type() + " " + mount.source() + " "
                + mount.options() + ": " + why);
    }
}
