package org.shimmer.runtime.linux.container;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.sys.LinuxCalls;

/**
 * An image's user ({@code User} of its config) as ids, read from the {@code /etc/passwd} and {@code /etc/group} a
 * container of the image would see: the topmost layer holding the file as a regular file, unless a layer above
 * deleted it (an overlay whiteout, a character device 0/0, on the file or on {@code etc}) or made {@code etc}
 * opaque ({@code trusted.overlay.opaque=y}), which ends the search with no file. A symbolic link ({@code etc} or
 * the file) is never followed: its target would be read on the host, outside the layer. Blocking.
 *
 * <p>{@code uid} and {@code uid:gid} are taken as they are; a uid alone gets the primary group its
 * {@code /etc/passwd} entry gives, or 0 without one (as docker and containerd). A name is looked up and unknown is
 * an error. Supplementary groups are those of {@code /etc/group} that list the user's name.
 */
public final class ImageUsers {

    /** Ids the container's process runs with. */
    public record User(int uid, int gid, List<Integer> additionalGids) {
        public User {
            additionalGids = List.copyOf(additionalGids);
        }
    }

    /** The most bytes of {@code /etc/passwd} or {@code /etc/group} read: a larger one is no account database. */
    static final int MAX_FILE = 4 << 20;
    private static final int S_IFMT = 0170000;
    private static final int S_IFDIR = 0040000;
    private static final int S_IFREG = 0100000;
    private static final String OPAQUE = "trusted.overlay.opaque";

    private record Entry(String name, int id, int gid, List<String> members) {}

    private final String image;
    private final List<Path> layers;

    /** @param layers the image's layer directories, top first */
    public ImageUsers(String image, List<Path> layers) {
        this.image = image;
        this.layers = List.copyOf(layers);
    }

    /** The ids of {@code user} ({@code name}, {@code uid}, {@code name:group}, {@code uid:gid}, …). */
    public User resolve(String user) {
        int colon = user.indexOf(':');
        String who = colon < 0 ? user : user.substring(0, colon);
        String group = colon < 0 ? null : user.substring(colon + 1);
        if (who.isEmpty() || (group != null && group.isEmpty())) {
            throw new InvalidSpecException("run image " + image + ": user \"" + user + "\" is not user[:group]");
        }
        Integer uid = number(who);
        Integer gid = group == null ? null : number(group);
        if (uid != null && gid != null) {
            return new User(uid, gid, List.of());
        }
        List<Entry> passwd = read("passwd", true);
        Optional<Entry> account = passwd.stream()
                .filter(entry -> uid != null ? entry.id() == uid : entry.name().equals(who)).findFirst();
        if (uid == null && account.isEmpty()) {
            throw new InvalidSpecException("run image " + image + ": unknown user \"" + who + "\": no such name in"
                    + " the image's /etc/passwd");
        }
        List<Entry> groups = read("group", false);
        int primary;
        if (gid != null) {
            primary = gid;
        } else if (group != null) {
            primary = groups.stream().filter(entry -> entry.name().equals(group)).findFirst()
                    .orElseThrow(() -> new InvalidSpecException("run image " + image + ": unknown group \"" + group
                            + "\" of user \"" + user + "\": no such name in the image's /etc/group"))
                    .id();
        } else {
            primary = account.map(Entry::gid).orElse(0);
        }
        List<Integer> additional = new ArrayList<>();
        account.ifPresent(found -> groups.stream()
                .filter(entry -> entry.members().contains(found.name()))
                .map(Entry::id)
                .filter(id -> id != primary && !additional.contains(id))
                .forEach(additional::add));
        return new User(uid != null ? uid : account.get().id(), primary, additional);
    }

    /**
     * The entries of {@code etc/<file>} as the image's merged root shows it; none without the file.
     *
     * @param passwd a passwd file ({@code name:x:uid:gid:…}), else a group file ({@code name:x:gid:members})
     */
    private List<Entry> read(String file, boolean passwd) {
        Optional<Path> found;
        try {
            found = find(layers, file);
        } catch (IOException e) {
            throw new UnavailableException("run image " + image + ": cannot look for /etc/" + file + " in its"
                    + " layers: " + e.getMessage(), e);
        }
        if (found.isEmpty()) {
            return List.of();
        }
        byte[] bytes;
        try (InputStream in = Files.newInputStream(found.get(), LinkOption.NOFOLLOW_LINKS)) {
            bytes = in.readNBytes(MAX_FILE + 1);
        } catch (IOException e) {
            throw new UnavailableException("run image " + image + ": cannot read " + found.get() + ": "
                    + e.getMessage(), e);
        }
        if (bytes.length > MAX_FILE) {
            throw new InvalidSpecException("run image " + image + ": /etc/" + file + " is larger than " + MAX_FILE
                    + " bytes");
        }
        List<Entry> entries = new ArrayList<>();
        for (String line : new String(bytes, StandardCharsets.UTF_8).split("\n")) {
            String[] fields = line.split(":", -1);
            if (line.startsWith("#") || fields.length < (passwd ? 4 : 3)) {
                continue;
            }
            Integer id = number(fields[2]);
            Integer gid = passwd ? number(fields[3]) : id;
            if (id == null || gid == null) {
                continue;
            }
            List<String> members = !passwd && fields.length > 3 && !fields[3].isBlank()
                    ? Arrays.stream(fields[3].split(",")).map(String::strip).toList() : List.of();
            entries.add(new Entry(fields[0], id, gid, members));
        }
        return entries;
    }

    /** The layer file {@code etc/<file>} a merged root shows, top layer first; see the class comment. */
    static Optional<Path> find(List<Path> layers, String file) throws IOException {
        for (Path layer : layers) {
            Path etc = layer.resolve("etc");
            Optional<Map<String, Object>> dir = lstat(etc);
            if (dir.isEmpty()) {
                continue;
            }
            if (!isDirectory(dir.get())) {
                // A whiteout, a link or a file: no etc/ of a lower layer shows through.
                return Optional.empty();
            }
            Optional<Map<String, Object>> entry = lstat(etc.resolve(file));
            if (entry.isPresent()) {
                return isRegular(entry.get()) ? Optional.of(etc.resolve(file)) : Optional.empty();
            }
            if (Arrays.equals(LinuxCalls.lgetxattr(etc, OPAQUE), new byte[] {'y'})) {
                return Optional.empty();
            }
        }
        return Optional.empty();
    }

    private static Optional<Map<String, Object>> lstat(Path path) throws IOException {
        try {
            return Optional.of(Files.readAttributes(path, "unix:mode", LinkOption.NOFOLLOW_LINKS));
        } catch (NoSuchFileException absent) {
            return Optional.empty();
        }
    }

    private static boolean isDirectory(Map<String, Object> attributes) {
        return ((Integer) attributes.get("mode") & S_IFMT) == S_IFDIR;
    }

    private static boolean isRegular(Map<String, Object> attributes) {
        return ((Integer) attributes.get("mode") & S_IFMT) == S_IFREG;
    }

    /** A non-negative decimal id, or null when {@code text} is a name. */
    private static Integer number(String text) {
        if (text.isEmpty() || !text.chars().allMatch(c -> c >= '0' && c <= '9')) {
            return null;
        }
        try {
            return Integer.parseInt(text);
        } catch (NumberFormatException tooLarge) {
            return null;
        }
    }
}
