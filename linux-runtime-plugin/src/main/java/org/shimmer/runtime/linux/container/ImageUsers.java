package org.shimmer.runtime.linux.container;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemLoopException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.sys.LinuxCalls;

/**
 * An image's user ({@code User} of its config) as ids, read from the {@code /etc/passwd} and {@code /etc/group} a
 * container of the image would see, looked up in its layers as overlay merges them: the topmost layer's entry of
 * each name, none under a whiteout (a character device 0/0), a directory merging the layers below down to an
 * opaque one ({@code trusted.overlay.opaque=y}). A symbolic link ({@code /etc} or the file, as many images have)
 * is followed within the image, never on the host: its text is read against the image's root, an absolute one
 * from that root and {@code ..} stopping there (a chroot's view, as runc reads it); an unfollowed link made
 * {@code user} an "unknown user". Blocking.
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
    private static final int S_IFLNK = 0120000;
    private static final int S_IFCHR = 0020000;
    /** The most symbolic links one lookup follows, as the kernel's {@code MAXSYMLINKS}. */
    static final int MAX_LINKS = 40;
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
        Integer uid = given(who, user);
        Integer gid = group == null ? null : given(group, user);
        if (uid != null && gid != null) {
            return new User(uid, gid, List.of());
        }
        // One view of the merged root for both files: a name looked up again (a link's "d/../d/../…") is not
        // looked up in every layer again.
        Map<String, Optional<Found>> seen = new HashMap<>();
        List<Entry> passwd = read("passwd", true, seen);
        Optional<Entry> account = passwd.stream()
                .filter(entry -> uid != null ? entry.id() == uid : entry.name().equals(who)).findFirst();
        if (uid == null && account.isEmpty()) {
            throw new InvalidSpecException("run image " + image + ": unknown user \"" + who + "\": no such name in"
                    + " the image's /etc/passwd");
        }
        List<Entry> groups = read("group", false, seen);
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
    private List<Entry> read(String file, boolean passwd, Map<String, Optional<Found>> seen) {
        Optional<Path> found;
        try {
            found = find(layers, file, seen);
        } catch (FileSystemLoopException e) {
            throw new InvalidSpecException("run image " + image + ": /etc/" + file + " goes through more than "
                    + MAX_LINKS + " symbolic links", e);
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

    /** The layer file {@code etc/<file>} a merged root shows, when a regular file; see the class comment. */
    static Optional<Path> find(List<Path> layers, String file) throws IOException {
        return find(layers, file, new HashMap<>());
    }

    /** {@link #find(List, String)}, with the entries of the merged root {@code seen} so far, by relative path. */
    private static Optional<Path> find(List<Path> layers, String file, Map<String, Optional<Found>> seen)
            throws IOException {
        return lookup(layers, "etc/" + file, seen).filter(found -> isRegular(found.attributes())).map(Found::path);
    }

    /** An entry of the merged root: its file in the topmost layer showing it, and for a directory its layers. */
    private record Found(Path path, Map<String, Object> attributes, List<Path> layers) {}

    /**
     * The entry a merged root shows at {@code path} (relative to the image's root), every symbolic link on the way
     * and at the end followed within the image: its text is read against the image's root, an absolute one from
     * the root and {@code ..} stopping there, as in a container; at most {@link #MAX_LINKS} of them. Empty when
     * nothing is there, or a name on the way is no directory.
     *
     * @throws FileSystemLoopException when more links are met than {@link #MAX_LINKS}
     */
    private static Optional<Found> lookup(List<Path> layers, String path, Map<String, Optional<Found>> seen)
            throws IOException {
        Deque<String> pending = new ArrayDeque<>(names(path));
        // The names of the directory reached, and the layers merging each directory from the root to it.
        List<String> at = new ArrayList<>();
        Deque<List<Path>> merged = new ArrayDeque<>();
        merged.push(rootLayers(layers));
        int links = 0;
        while (!pending.isEmpty()) {
            String name = pending.pop();
            if (name.equals("..")) {
                if (!at.isEmpty()) {
                    at.removeLast();
                    merged.pop();
                }
                continue;
            }
            String relative = at.isEmpty() ? name : String.join("/", at) + "/" + name;
            // Each relative path has one merged view (its layers are those of the path above it), and layers never
            // change: looked up once. A link of "d/../" repeated, 40 of them, once made 64 000 lookups of d, each
            // in every layer: minutes for one run of an image of 100 layers.
            Optional<Found> found = seen.get(relative);
            if (found == null) {
                found = entry(merged.peek(), relative);
                seen.put(relative, found);
            }
            if (found.isEmpty()) {
                return Optional.empty();
            }
            int type = (Integer) found.get().attributes().get("mode") & S_IFMT;
            if (type == S_IFLNK) {
                if (++links > MAX_LINKS) {
                    throw new FileSystemLoopException(path);
                }
                String target = Files.readSymbolicLink(found.get().path()).toString();
                names(target).reversed().forEach(pending::push);
                if (target.startsWith("/")) {
                    at.clear();
                    while (merged.size() > 1) {
                        merged.pop();
                    }
                }
            } else if (type == S_IFDIR) {
                at.add(name);
                merged.push(found.get().layers());
            } else {
                return pending.isEmpty() ? found : Optional.empty();
            }
        }
        return Optional.empty();
    }

    /**
     * The layers whose root shows in the merged root: all of them. Overlay never looks the root up, so an opaque
     * mark on a layer's root (a root-level {@code .wh..wh..opq}) hides nothing: the kernel shows the layers below.
     */
    private static List<Path> rootLayers(List<Path> layers) {
        return List.copyOf(layers);
    }

    /**
     * {@code relative} in the merged directory of {@code layers} (top first): the topmost layer's entry, absent
     * under a whiteout; a directory merges the directories of the layers below down to an opaque one, or to a
     * layer holding anything else there.
     */
    private static Optional<Found> entry(List<Path> layers, String relative) throws IOException {
        for (int i = 0; i < layers.size(); i++) {
            Path path = layers.get(i).resolve(relative);
            Optional<Map<String, Object>> attributes = lstat(path);
            if (attributes.isEmpty()) {
                continue;
            }
            if (isWhiteout(attributes.get())) {
                return Optional.empty();
            }
            if (!isDirectory(attributes.get())) {
                return Optional.of(new Found(path, attributes.get(), List.of()));
            }
            List<Path> dirs = new ArrayList<>(List.of(layers.get(i)));
            boolean opaque = isOpaque(path);
            for (int j = i + 1; j < layers.size() && !opaque; j++) {
                Path lower = layers.get(j).resolve(relative);
                Optional<Map<String, Object>> below = lstat(lower);
                if (below.isEmpty()) {
                    continue;
                }
                if (!isDirectory(below.get())) {
                    break;
                }
                dirs.add(layers.get(j));
                opaque = isOpaque(lower);
            }
            return Optional.of(new Found(path, attributes.get(), dirs));
        }
        return Optional.empty();
    }

    /** The names of {@code path}, without empty ones and {@code .}. */
    private static List<String> names(String path) {
        return Arrays.stream(path.split("/")).filter(name -> !name.isEmpty() && !name.equals(".")).toList();
    }

    private static boolean isOpaque(Path dir) throws IOException {
        return Arrays.equals(LinuxCalls.lgetxattr(dir, OPAQUE), new byte[] {'y'});
    }

    private static Optional<Map<String, Object>> lstat(Path path) throws IOException {
        try {
            return Optional.of(Files.readAttributes(path, "unix:mode,rdev", LinkOption.NOFOLLOW_LINKS));
        } catch (NoSuchFileException absent) {
            return Optional.empty();
        }
    }

    /** An overlay whiteout: a character device 0/0. */
    private static boolean isWhiteout(Map<String, Object> attributes) {
        return ((Integer) attributes.get("mode") & S_IFMT) == S_IFCHR && (Long) attributes.get("rdev") == 0;
    }

    private static boolean isDirectory(Map<String, Object> attributes) {
        return ((Integer) attributes.get("mode") & S_IFMT) == S_IFDIR;
    }

    private static boolean isRegular(Map<String, Object> attributes) {
        return ((Integer) attributes.get("mode") & S_IFMT) == S_IFREG;
    }

    /**
     * A uid or gid given in {@code user}, or null for a name. Digits only is a number, however long: one past an int
     * was looked up as a name and reported as no such user.
     */
    private Integer given(String text, String user) {
        Integer id = number(text);
        if (id == null && !text.isEmpty() && text.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new InvalidSpecException("run image " + image + ": user \"" + user + "\": id " + text
                    + " is out of range, runc takes 0 to " + Integer.MAX_VALUE);
        }
        return id;
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
