package org.shimmer.runtime.linux.shim.local;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.shim.Mount;

/** The option table of rootfs mounts, read as containerd reads it, except that unknown words are errors. */
class MountOptionsTest {

    private static MountOptions parse(String type, String... options) {
        return MountOptions.parse(new Mount(type, "/src", List.of(options)));
    }

    @ParameterizedTest(name = "{0} sets {1}")
    @CsvSource({
            "ro, 1", "nosuid, 2", "nodev, 4", "noexec, 8", "sync, 16", "remount, 32", "mand, 64", "dirsync, 128",
            "noatime, 1024", "nodiratime, 2048", "bind, 4096", "rbind, 20480", "relatime, 2097152",
            "strictatime, 16777216"})
    void aSettingWordSetsItsFlag(String word, long flag) {
        MountOptions options = parse("tmpfs", word);

        assertThat(options.flags()).isEqualTo(flag);
        assertThat(options.cleared()).isZero();
        assertThat(options.propagation()).isZero();
        assertThat(options.data()).isNull();
    }

    @ParameterizedTest(name = "{1} clears what {0} set")
    @CsvSource({
            "ro, rw, 1", "nosuid, suid, 2", "nodev, dev, 4", "noexec, exec, 8", "sync, async, 16",
            "mand, nomand, 64", "noatime, atime, 1024", "nodiratime, diratime, 2048",
            "relatime, norelatime, 2097152", "strictatime, nostrictatime, 16777216"})
    void aClearingWordClearsTheFlagAndTheLaterWordWins(String setting, String clearing, long flag) {
        MountOptions cleared = parse("tmpfs", setting, clearing);
        MountOptions setAgain = parse("tmpfs", clearing, setting);

        assertThat(cleared.flags()).isZero();
        assertThat(cleared.cleared()).isEqualTo(flag);
        assertThat(cleared.data()).as("a clearing word is not data").isNull();
        assertThat(setAgain.flags()).isEqualTo(flag);
        assertThat(setAgain.cleared()).isZero();
    }

    @Test
    void defaultsSetsNothing() {
        MountOptions options = parse("tmpfs", "defaults");

        assertThat(options.flags()).isZero();
        assertThat(options.cleared()).isZero();
        assertThat(options.data()).isNull();
    }

    @ParameterizedTest(name = "{0} is propagation {1}")
    @CsvSource({
            "private, 262144", "rprivate, 278528", "shared, 1048576", "rshared, 1064960", "slave, 524288",
            "rslave, 540672", "unbindable, 131072", "runbindable, 147456"})
    void propagationWordsAreKeptApartFromTheMountFlags(String word, long propagation) {
        MountOptions options = parse("bind", "rbind", word);

        assertThat(options.propagation()).isEqualTo(propagation);
        assertThat(options.flags()).isEqualTo(LinuxCalls.MS_BIND | LinuxCalls.MS_REC);
        assertThat(options.data()).isNull();
    }

    @Test
    void theLastPropagationWordWins() {
        assertThat(parse("bind", "shared", "rslave").propagation())
                .isEqualTo(LinuxCalls.MS_SLAVE | LinuxCalls.MS_REC);
    }

    @Test
    void anUnknownWordIsAnErrorNamingTheWordAndTheMount() {
        assertThatThrownBy(() -> MountOptions.parse(new Mount("bind", "/images/alpine",
                List.of("rbind", "ro", "nosuchflag"))))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("\"nosuchflag\"")
                .hasMessageContaining("/images/alpine");
    }

    @Test
    void keyValueOptionsAndTheListedBareWordsAreFileSystemDataInOrder() {
        MountOptions overlay = parse("overlay", "lowerdir=/l1:/l2", "upperdir=/u", "relatime", "workdir=/w",
                "userxattr", "volatile");
        MountOptions tmpfs = parse("tmpfs", "nosuid", "size=1m", "mode=755", "noswap");

        assertThat(overlay.data()).isEqualTo("lowerdir=/l1:/l2,upperdir=/u,workdir=/w,userxattr,volatile");
        assertThat(overlay.flags()).isEqualTo(LinuxCalls.MS_RELATIME);
        assertThat(tmpfs.data()).isEqualTo("size=1m,mode=755,noswap");
        assertThat(tmpfs.flags()).isEqualTo(LinuxCalls.MS_NOSUID);
    }

    @Test
    void aBareWordListedForAnotherTypeIsAnError() {
        assertThatThrownBy(() -> parse("tmpfs", "userxattr"))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("\"userxattr\"");
        assertThatThrownBy(() -> parse("ext4", "=value"))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("\"=value\"");
    }

    @Test
    void aBindTakesNoData() {
        assertThatThrownBy(() -> parse("bind", "rbind", "size=1m"))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("size=1m");
        assertThatThrownBy(() -> parse("none", "bind", "mode=755"))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("mode=755");
    }

    @Test
    void theBindTypeIsABindWithoutAWord() {
        MountOptions options = parse("bind", "ro");

        assertThat(options.bind()).isTrue();
        assertThat(options.flags()).isEqualTo(LinuxCalls.MS_BIND | LinuxCalls.MS_RDONLY);
    }

    @Test
    void anOptionHoldingACommaIsAnError() {
        assertThatThrownBy(() -> parse("tmpfs", "size=1m,nosuchflag"))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("size=1m,nosuchflag");
    }
}
