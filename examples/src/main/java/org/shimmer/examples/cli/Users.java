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

    /**
     * The largest uid or gid runc takes: its user lookup, which docker's daemon shares, refuses a larger one ("uids
     * and gids must be in range 0-2147483647") though the OCI spec's field is a uint32 and the kernel's uid_t too.
     */
    static final int MAX_ID = Integer.MAX_VALUE;

    /** {uid, gid} of {@code user}, names looked up under {@code root} (none: numbers only). */
    static int[] resolve(String user, Path root) {
        int colon = user.indexOf(':');
        String name = colon < 0 ? user : user.substring(0, colon);
        String group = colon < 0 ? null : user.substring(colon + 1);
        if (name.isEmpty() || group != null && group.isEmpty()) {
            throw new CliException("invalid --user " + user + ": USER[:GROUP], names or numbers");
        }
        if (root == null && (!isNumber(name) || group != null && !isNumber(group))) {
            throw new CliException("invalid --user " + user + ": names are not looked up in an --image, give numbers");
        }
        String given = "in --user " + user;
        Optional<String[]> account;
        int uid;
        if (isNumber(name)) {
            uid = id(name, given);
            account = find(root, "passwd", 2, Integer.toString(uid)); // 0042 is uid 42's entry, as runc finds it
        } else {
            account = find(root, "passwd", 0, name);
            uid = id(account.orElseThrow(() -> new CliException("user " + name + " not found in "
                    + where(root, "passwd")))[2], "of user " + name + " in " + where(root, "passwd"));
        }
        int gid;
        if (group == null) {
            gid = account.map(entry -> id(entry[3], "of user " + name + "'s group in " + where(root, "passwd")))
                    .orElse(0);
        } else if (isNumber(group)) {
            gid = id(group, given);
        } else {
            String[] entry = find(root, "group", 0, group).orElseThrow(() -> new CliException("group " + group
                    + " not found in " + where(root, "group")));
            gid = id(entry[2], "of group " + group + " in " + where(root, "group"));
        }
        return new int[] {uid, gid};
    }

    private static String where(Path root, String file) {
        return root.resolve("etc").resolve(file).toString();
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

    /** ASCII digits only: {@code Character.isDigit} takes other scripts' digits, a name to docker (Go's Atoi). */
    private static boolean isNumber(String word) {
        return !word.isEmpty() && word.chars().allMatch(c -> c >= '0' && c <= '9');
    }

    /** {@code id} as a uid or gid runc takes; {@code source} says where it came from, for the error. */
    private static int id(String id, String source) {
        if (!isNumber(id)) {
            throw new CliException("id " + id + " " + source + " is not a number");
        }
        String digits = id.replaceFirst("^0+(?=.)", "");
        // More than ten digits is past MAX_ID anyway, and would overflow parseLong from the twentieth.
        if (digits.length() > 10 || Long.parseLong(digits) > MAX_ID) {
            throw new CliException("id " + id + " " + source + " is out of range: runc takes 0 to " + MAX_ID);
        }
        return Integer.parseInt(digits);
    }
}
