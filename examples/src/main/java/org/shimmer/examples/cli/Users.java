package org.shimmer.examples.cli;

import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Optional;

/**
 * {@code --user USER[:GROUP]} as ids: numbers are taken as they are, names are looked up in the root's
 * {@code /etc/passwd} and {@code /etc/group}. A uid alone takes its passwd entry's group, or 0, as docker does.
 *
 * <p>The files are the container's, not ours: {@code /etc} and the file must not be symbolic links, which would
 * resolve against the host's root here (a rootfs's {@code /etc/passwd -> /etc/shadow} would read ours).
 */
final class Users {

    /** The most bytes read of either file: a larger one is no account database. */
    private static final int MAX_BYTES = 1 << 20;

    private Users() {}

    /** {uid, gid} of {@code user}, names looked up under {@code root} (none: numbers only). */
    static int[] resolve(String user, Path root) {
        int colon = user.indexOf(':');
        String name = colon < 0 ? user : user.substring(0, colon);
        String group = colon < 0 ? null : user.substring(colon + 1);
        if (name.isEmpty() || group != null && group.isEmpty()) {
            throw new CliException("invalid --user " + user + ": USER[:GROUP], names or numbers");
        }
        Optional<String[]> account = isNumber(name) ? find(root, "passwd", 2, name) : find(root, "passwd", 0, name);
        int uid;
        if (isNumber(name)) {
            uid = parse(name, user);
        } else {
            uid = parse(account.orElseThrow(() -> new CliException("user " + name + " not found in "
                    + where(root, "passwd")))[2], user);
        }
        int gid;
        if (group == null) {
            gid = account.map(entry -> parse(entry[3], user)).orElse(0);
        } else if (isNumber(group)) {
            gid = parse(group, user);
        } else {
            gid = parse(find(root, "group", 0, group).orElseThrow(() -> new CliException("group " + group
                    + " not found in " + where(root, "group")))[2], user);
        }
        return new int[] {uid, gid};
    }

    private static String where(Path root, String file) {
        return root == null ? "the image (give numbers with --image)" : root.resolve("etc").resolve(file).toString();
    }

    /** The first entry of {@code /etc/<file>} whose field {@code field} is {@code value}. */
    private static Optional<String[]> find(Path root, String file, int field, String value) {
        if (root == null) {
            return Optional.empty();
        }
        Path etc = root.resolve("etc");
        if (Files.isSymbolicLink(etc)) {
            throw new CliException(etc + " is a symbolic link: the container's accounts cannot be read safely");
        }
        byte[] bytes;
        try (InputStream in = Channels.newInputStream(Files.newByteChannel(etc.resolve(file),
                StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS))) {
            bytes = in.readNBytes(MAX_BYTES);
        } catch (NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException e) {
            throw new CliException("cannot read " + etc.resolve(file) + ": " + e.getMessage());
        }
        return new String(bytes, StandardCharsets.UTF_8).lines()
                .map(line -> line.split(":", -1))
                .filter(entry -> entry.length > 3 && entry[field].equals(value))
                .findFirst();
    }

    private static boolean isNumber(String word) {
        return !word.isEmpty() && word.length() < 10 && word.chars().allMatch(Character::isDigit);
    }

    private static int parse(String id, String user) {
        if (!isNumber(id)) {
            throw new CliException("invalid id " + id + " for --user " + user);
        }
        return Integer.parseInt(id);
    }
}
