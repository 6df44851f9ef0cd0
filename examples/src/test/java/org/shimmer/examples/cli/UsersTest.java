package org.shimmer.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class UsersTest {

    @TempDir
    Path root;

    @Test
    void tenDigitIdsAreNumbersUpToRuncsLimit() {
        // A 10-digit id was taken for a name: "user 1000000000 not found in the image (give numbers with --image)".
        assertThat(Users.resolve("1000000000", null)).containsExactly(1000000000, 0);
        assertThat(Users.resolve("0:1000000000", null)).containsExactly(0, 1000000000);
        assertThat(Users.resolve("2147483647:2147483647", null)).containsExactly(Integer.MAX_VALUE, Integer.MAX_VALUE);
        assertThat(Users.resolve("999999999", null)).containsExactly(999999999, 0);
        assertThat(Users.resolve("0", null)).containsExactly(0, 0);
        assertThat(Users.resolve("000000000042:007", null)).containsExactly(42, 7);
    }

    @Test
    void anIdPastRuncsLimitIsRefusedNamingIt() {
        for (String user : List.of("2147483648", "4294967294", "4294967295", "99999999999999999999999")) {
            assertThatThrownBy(() -> Users.resolve(user, null)).as(user)
                    .isInstanceOf(CliException.class)
                    .hasMessage("id " + user + " in --user " + user + " is out of range: runc takes 0 to 2147483647");
            assertThatThrownBy(() -> Users.resolve("0:" + user, root)).as("0:" + user)
                    .hasMessage("id " + user + " in --user 0:" + user + " is out of range: runc takes 0 to 2147483647");
        }
    }

    @Test
    void namesWithAnImageAreRefusedAsNamesNotAsMissing() {
        for (String user : List.of("app", "0:staff", "app:0")) {
            assertThatThrownBy(() -> Users.resolve(user, null)).as(user)
                    .isInstanceOf(CliException.class)
                    .hasMessage("invalid --user " + user + ": names are not looked up in an --image, give numbers");
        }
    }

    @Test
    void namesAndNumbersAreLookedUpInTheRootsAccounts() throws IOException {
        writeAccounts("app:x:1000000000:2000000000::/:/bin/sh\nlate:x:42:43::/:/bin/sh\n",
                "staff:x:1500000000:\n");
        assertThat(Users.resolve("app", root)).containsExactly(1000000000, 2000000000);
        assertThat(Users.resolve("1000000000", root)).containsExactly(1000000000, 2000000000);
        assertThat(Users.resolve("0042", root)).as("uid 42's entry, as runc reads 0042").containsExactly(42, 43);
        assertThat(Users.resolve("app:staff", root)).containsExactly(1000000000, 1500000000);
        assertThat(Users.resolve("7", root)).as("no entry: group 0").containsExactly(7, 0);
        // Other scripts' digits are no number to docker either: a name, looked up and not found.
        assertThatThrownBy(() -> Users.resolve("١٠٠٠", root))
                .hasMessage("user ١٠٠٠ not found in " + root.resolve("etc/passwd"));
    }

    @Test
    void anAccountsIdPastRuncsLimitIsRefusedNamingItsFile() throws IOException {
        writeAccounts("big:x:3000000000:0::/:/bin/sh\nbiggroup:x:0:4294967295::/:/bin/sh\n",
                "huge:x:2147483648:\n");
        assertThatThrownBy(() -> Users.resolve("big", root)).hasMessage("id 3000000000 of user big in "
                + root.resolve("etc/passwd") + " is out of range: runc takes 0 to 2147483647");
        assertThatThrownBy(() -> Users.resolve("biggroup", root)).hasMessage("id 4294967295 of user biggroup's"
                + " group in " + root.resolve("etc/passwd") + " is out of range: runc takes 0 to 2147483647");
        assertThatThrownBy(() -> Users.resolve("0:huge", root)).hasMessage("id 2147483648 of group huge in "
                + root.resolve("etc/group") + " is out of range: runc takes 0 to 2147483647");
    }

    private void writeAccounts(String passwd, String group) throws IOException {
        Files.createDirectories(root.resolve("etc"));
        Files.writeString(root.resolve("etc/passwd"), passwd);
        Files.writeString(root.resolve("etc/group"), group);
    }
}
