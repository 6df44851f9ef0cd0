package org.shimmer.runtime.linux.shim;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.shim.ShimException;

/** The update's limits at their boundaries, and the kernel's refusals as each shim words them. */
class ResourceUpdatesTest {

    private static final String OWNER = "update task ns/id";

    @ParameterizedTest
    @CsvSource(delimiter = '|', textBlock = """
            memory | limit       | -1
            memory | limit       | 0
            memory | limit       | 6291456
            memory | limit       | 9223372036854775807
            memory | reservation | -1
            memory | reservation | 1
            memory | swap        | -1
            memory | swappiness  | 0
            memory | swappiness  | 100
            cpu    | shares      | 0
            cpu    | shares      | 2
            cpu    | shares      | 262144
            cpu    | quota       | -1
            cpu    | quota       | 0
            cpu    | quota       | 1000
            cpu    | quota       | 100000000000
            cpu    | period      | 0
            cpu    | period      | 1000
            cpu    | period      | 1000000
            pids   | limit       | -1
            pids   | limit       | 0
            pids   | limit       | 1
            pids   | limit       | 4194304
            blockIO| weight      | 0
            blockIO| weight      | 10
            blockIO| weight      | 1000
            """)
    void aValueAtItsBoundaryIsTaken(String section, String name, String value) {
        assertThatCode(() -> check(section, name, value)).doesNotThrowAnyException();
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', textBlock = """
            memory | limit       | -2
            memory | limit       | 6291455
            memory | limit       | 9223372036854775808
            memory | limit       | -9223372036854775808
            memory | reservation | -2
            memory | swap        | 6291455
            memory | swappiness  | -1
            memory | swappiness  | 101
            cpu    | shares      | -1
            cpu    | shares      | 1
            cpu    | shares      | 262145
            cpu    | shares      | 18446744073709551615
            cpu    | quota       | -2
            cpu    | quota       | 999
            cpu    | quota       | 100000000001
            cpu    | period      | -1
            cpu    | period      | 999
            cpu    | period      | 1000001
            pids   | limit       | -2
            pids   | limit       | 4194305
            pids   | limit       | 9223372036854775807
            blockIO| weight      | 9
            blockIO| weight      | 1001
            blockIO| weight      | 65536
            """)
    void aValueJustPastItsBoundaryIsRefusedNamingTheFieldAndTheValue(String section, String name, String value) {
        assertThatThrownBy(() -> check(section, name, value))
                .isInstanceOfSatisfying(InvalidSpecException.class, invalid -> assertThat(invalid.field())
                        .isEqualTo("linux.resources." + section + "." + name))
                .hasMessageContaining("was " + value);
    }

    @ParameterizedTest
    @ValueSource(strings = {"\"1\"", "1.5", "1e3", "true", "[1]", "{}"})
    void aLimitThatIsNoIntegerIsRefusedNamingIt(String value) {
        assertThatThrownBy(() -> check("pids", "limit", value))
                .isInstanceOfSatisfying(InvalidSpecException.class, invalid -> assertThat(invalid.field())
                        .isEqualTo("linux.resources.pids.limit"))
                .hasMessageContaining("must be an integer");
    }

    @Test
    void aQuotaIsBoundByItsOwnPeriod() {
        assertThatCode(() -> ResourceUpdates.check(OWNER,
                "{\"cpu\": {\"quota\": 1000000000000, \"period\": 1000000}}".getBytes(UTF_8)))
                .doesNotThrowAnyException();
        assertThatThrownBy(() -> ResourceUpdates.check(OWNER,
                "{\"cpu\": {\"quota\": 1000000000001, \"period\": 1000000}}".getBytes(UTF_8)))
                .hasMessageContaining("cpu.quota").hasMessageContaining("1000000000001");
    }

    /** runc's words through the local shim, and through containerd's shim. */
    @ParameterizedTest
    @ValueSource(strings = {"update task ns/id: runc update failed: ",
            "update task ns/id: runc did not terminate successfully: exit status 1: "})
    void theKernelsRefusalIsTypedWhicheverShimWordsIt(String prefix) {
        Throwable below = ResourceUpdates.refused("task ns/id", new ShimException(ErrorCode.INTERNAL, prefix
                + "unable to set memory limit to 8388608 (current usage: 25550848, peak usage: 27070464)", null));
        assertThat(below).isInstanceOf(FailedPreconditionException.class)
                .hasMessage("update task ns/id: memory limit 8388608 is below what the container uses, and the"
                        + " kernel could not reclaim enough (current usage: 25550848, peak usage: 27070464); the"
                        + " container keeps its limits");
        Throwable node = ResourceUpdates.refused("task ns/id", new ShimException(ErrorCode.INTERNAL, prefix
                + "failed to write \"99\": write /sys/fs/cgroup/cpuset/c1/cpuset.mems: invalid argument", null));
        assertThat(node).isInstanceOfSatisfying(InvalidSpecException.class, invalid -> assertThat(invalid.field())
                .isEqualTo("linux.resources.cpu.mems"))
                .hasMessageContaining("99 refused by the kernel (cpuset.mems: invalid argument)");
        ShimException other = new ShimException(ErrorCode.INTERNAL, prefix + "something else", null);
        assertThat(ResourceUpdates.refused("task ns/id", other)).isSameAs(other);
    }

    @Test
    void theLimitsReadBackAreWrittenAsAnUpdate() {
        Map<String, String> read = new LinkedHashMap<>();
        read.put("cpuset.cpus", "0-1");
        read.put("memory.limit_in_bytes", "9223372036854771712");
        read.put("cpu.shares", "1024");
        read.put("pids.max", "max");
        assertThat(new String(CgroupLimits.restoring(read), UTF_8)).isEqualTo("{\"cpu\": {\"cpus\": \"0-1\","
                + " \"shares\": 1024}, \"memory\": {\"limit\": -1}, \"pids\": {\"limit\": -1}}");
        assertThat(CgroupLimits.touched(OWNER, "{\"pids\": {\"limit\": 7}}".getBytes(UTF_8))).isEmpty();
        assertThat(CgroupLimits.touched(OWNER, "{\"cpu\": {\"cpus\": \"0\"}, \"memory\": {\"limit\": 0}}"
                .getBytes(UTF_8))).isEmpty();
        assertThat(CgroupLimits.touched(OWNER, "{\"cpu\": {\"cpus\": \"0\"}, \"memory\": {\"limit\": 8388608}}"
                .getBytes(UTF_8))).containsExactly("cpuset.cpus", "memory.limit_in_bytes");
    }

    /**
     * A file this kernel lacks beside one it has: the one it has is read (to be set back), where a single missing
     * file used to make the whole read empty, and a refused update then kept runc's new cpuset.
     */
    @Test
    void aLimitFileThisKernelLacksIsLeftOutAndTheOthersAreStillRead() throws Exception {
        int self = (int) ProcessHandle.current().pid();
        Map<String, String> read = CgroupLimits.read(self, java.util.Set.of("cpuset.cpus", "cpuset.no_such_limit"));
        assertThat(read).containsOnlyKeys("cpuset.cpus");
        assertThat(read.get("cpuset.cpus")).isEqualTo(java.nio.file.Files.readString(cpusetOf(self)
                .resolve("cpuset.cpus")).strip());
    }

    /** The cgroup v1 cpuset directory of {@code pid}. */
    private static java.nio.file.Path cpusetOf(int pid) throws Exception {
        for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc", Integer.toString(pid),
                "cgroup"))) {
            String[] parts = line.split(":", 3);
            if (java.util.List.of(parts[1].split(",")).contains("cpuset")) {
                return java.nio.file.Path.of("/sys/fs/cgroup", parts[1]).resolve(parts[2].substring(1));
            }
        }
        throw new AssertionError("no cpuset cgroup of " + pid);
    }

    private static void check(String section, String name, String value) {
        ResourceUpdates.check(OWNER, ("{\"" + section + "\": {\"" + name + "\": " + value + "}}").getBytes(UTF_8));
    }
}
