package org.shimmer.runtime.linux.spec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.spec.Mount;
import org.shimmer.runtime.spec.Namespace;
import org.shimmer.runtime.spec.Rlimit;
import org.shimmer.runtime.spec.Spec;

/** The OCI JSON of a typed spec: each part at its OCI path. */
class OciJsonTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static JsonNode parse(byte[] json) throws IOException {
        return JSON.readTree(json);
    }

    private static List<String> texts(JsonNode array) {
        List<String> values = new ArrayList<>();
        array.forEach(value -> values.add(value.asText()));
        return values;
    }

    @Test
    void defaultSpecHasEveryPartInItsPlace() throws IOException {
        JsonNode spec = parse(OciJson.spec(Spec.defaults(), "/ns/id"));

        assertThat(spec.path("ociVersion").asText()).isEqualTo("1.0.2");
        JsonNode process = spec.path("process");
        assertThat(process.path("terminal").asBoolean(true)).isFalse();
        assertThat(process.path("user").path("uid").asInt(-1)).isZero();
        assertThat(process.path("user").path("gid").asInt(-1)).isZero();
        assertThat(process.path("args").isArray()).isTrue();
        assertThat(texts(process.path("env"))).containsExactly("PATH=" + Spec.DEFAULT_PATH);
        assertThat(process.path("cwd").asText()).isEqualTo("/");
        assertThat(process.path("noNewPrivileges").asBoolean()).isTrue();
        assertThat(texts(process.path("capabilities").path("bounding"))).hasSize(14).startsWith("CAP_CHOWN")
                .contains("CAP_NET_RAW", "CAP_AUDIT_WRITE").doesNotContain("CAP_SYS_ADMIN");
        assertThat(process.path("capabilities").path("effective"))
                .isEqualTo(process.path("capabilities").path("bounding"));
        assertThat(process.path("capabilities").path("permitted"))
                .isEqualTo(process.path("capabilities").path("bounding"));
        assertThat(process.path("capabilities").has("inheritable")).isFalse();
        JsonNode nofile = process.path("rlimits").path(0);
        assertThat(nofile.path("type").asText()).isEqualTo("RLIMIT_NOFILE");
        assertThat(nofile.path("soft").asLong()).isEqualTo(1024);
        assertThat(nofile.path("hard").asLong()).isEqualTo(1024);

        assertThat(spec.path("root").path("path").asText()).isEqualTo("rootfs");
        assertThat(spec.path("root").path("readonly").asBoolean(true)).isFalse();
        assertThat(spec.has("hostname")).isFalse();
        List<String> destinations = new ArrayList<>();
        spec.path("mounts").forEach(mount -> destinations.add(mount.path("destination").asText()));
        assertThat(destinations).contains("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys",
                "/sys/fs/cgroup");
        assertThat(spec.path("mounts").path(0).path("type").asText()).isEqualTo("proc");

        JsonNode linux = spec.path("linux");
        assertThat(linux.path("cgroupsPath").asText()).isEqualTo("/ns/id");
        List<String> namespaces = new ArrayList<>();
        linux.path("namespaces").forEach(namespace -> namespaces.add(namespace.path("type").asText()));
        assertThat(namespaces).containsExactly("pid", "ipc", "uts", "mount", "network");
        assertThat(texts(linux.path("maskedPaths"))).contains("/proc/kcore", "/sys/firmware");
        assertThat(texts(linux.path("readonlyPaths"))).contains("/proc/sys", "/proc/sysrq-trigger");
        JsonNode deny = linux.path("resources").path("devices").path(0);
        assertThat(deny.path("allow").asBoolean(true)).isFalse();
        assertThat(deny.path("access").asText()).isEqualTo("rwm");
        assertThat(linux.path("resources").has("memory")).isFalse();

        JsonNode seccomp = linux.path("seccomp");
        assertThat(seccomp.path("defaultAction").asText()).isEqualTo("SCMP_ACT_ERRNO");
        assertThat(seccomp.path("defaultErrnoRet").asInt()).isEqualTo(1);
        assertThat(texts(seccomp.path("architectures"))).isNotEmpty();
        assertThat(texts(seccomp.path("syscalls").path(0).path("names"))).contains("read", "write");
        assertThat(seccomp.path("syscalls").path(0).path("action").asText()).isEqualTo("SCMP_ACT_ALLOW");
        JsonNode clone = null;
        for (JsonNode rule : seccomp.path("syscalls")) {
            if (texts(rule.path("names")).equals(List.of("clone"))) {
                clone = rule;
            }
        }
        assertThat(clone).isNotNull();
        JsonNode arg = clone.path("args").path(0);
        assertThat(arg.path("index").asInt(-1)).isZero();
        assertThat(arg.path("value").asLong()).isEqualTo(0x7E020000L);
        assertThat(arg.path("valueTwo").asLong(-1)).isZero();
        assertThat(arg.path("op").asText()).isEqualTo("SCMP_CMP_MASKED_EQ");
    }

    @Test
    void setFieldsAreWrittenWhereOciPutsThem() throws IOException {
        Spec built = Spec.builder().args("/bin/sh", "-c", "exit 3").env("A", "1").cwd("/tmp").user(1000, 100)
                .additionalGids(5).hostname("box").readonlyRootfs(true).rootPath("/abs/rootfs")
                .memoryLimit(64L << 20).cpus(0.5).pidsLimit(16).rlimit("RLIMIT_CORE", 0, Rlimit.UNLIMITED)
                .annotation("org.example/k", "v").addMount(Mount.bind("/srv/data", "/data", true))
                .namespace(Namespace.join(Namespace.Type.NETWORK, "/proc/1/ns/net")).seccompUnconfined().build();
        JsonNode spec = parse(OciJson.spec(built, "/ns/id"));

        assertThat(texts(spec.path("process").path("args"))).containsExactly("/bin/sh", "-c", "exit 3");
        assertThat(texts(spec.path("process").path("env"))).contains("A=1");
        assertThat(spec.path("process").path("cwd").asText()).isEqualTo("/tmp");
        assertThat(spec.path("process").path("user").path("uid").asInt()).isEqualTo(1000);
        assertThat(spec.path("process").path("user").path("gid").asInt()).isEqualTo(100);
        assertThat(spec.path("process").path("user").path("additionalGids").path(0).asInt()).isEqualTo(5);
        JsonNode core = spec.path("process").path("rlimits").path(1);
        assertThat(core.path("type").asText()).isEqualTo("RLIMIT_CORE");
        assertThat(core.path("hard").bigIntegerValue().toString()).isEqualTo("18446744073709551615");
        assertThat(spec.path("hostname").asText()).isEqualTo("box");
        assertThat(spec.path("root").path("path").asText()).isEqualTo("/abs/rootfs");
        assertThat(spec.path("root").path("readonly").asBoolean()).isTrue();
        assertThat(spec.path("annotations").path("org.example/k").asText()).isEqualTo("v");
        JsonNode bind = spec.path("mounts").path(spec.path("mounts").size() - 1);
        assertThat(bind.path("destination").asText()).isEqualTo("/data");
        assertThat(bind.path("source").asText()).isEqualTo("/srv/data");
        assertThat(texts(bind.path("options"))).contains("rbind", "ro");
        JsonNode resources = spec.path("linux").path("resources");
        assertThat(resources.path("memory").path("limit").asLong()).isEqualTo(64L << 20);
        assertThat(resources.path("cpu").path("quota").asLong()).isEqualTo(50_000);
        assertThat(resources.path("cpu").path("period").asLong()).isEqualTo(100_000);
        assertThat(resources.path("pids").path("limit").asLong()).isEqualTo(16);
        JsonNode net = spec.path("linux").path("namespaces").path(spec.path("linux").path("namespaces").size() - 1);
        assertThat(net.path("type").asText()).isEqualTo("network");
        assertThat(net.path("path").asText()).isEqualTo("/proc/1/ns/net");
        assertThat(spec.path("linux").has("seccomp")).isFalse();
    }

    @Test
    void sameSpecSameBytes() {
        Spec spec = Spec.builder().addCapability("SYS_PTRACE").build();
        assertThat(OciJson.spec(spec, "/a/b")).isEqualTo(OciJson.spec(spec.toBuilder().build(), "/a/b"));
    }

    @Test
    void execProcessAndUpdateResources() throws IOException {
        JsonNode process = parse(OciJson.execProcess(Spec.Process.builder().args("/bin/true").build()));
        assertThat(texts(process.path("args"))).containsExactly("/bin/true");
        assertThat(process.path("noNewPrivileges").asBoolean()).isTrue();
        assertThat(texts(process.path("capabilities").path("effective"))).hasSize(14);

        JsonNode resources = parse(OciJson.updateResources(Spec.Resources.builder().memoryLimit(8 << 20).build()));
        assertThat(resources.path("memory").path("limit").asLong()).isEqualTo(8 << 20);
        assertThat(resources.has("cpu")).isFalse();
        assertThat(resources.has("pids")).isFalse();
        assertThat(resources.has("devices")).isFalse();
    }

    /** A period alone was dropped from the JSON, so a spec or an update asking for it got nothing. */
    @Test
    void aCpuPeriodOrQuotaAloneIsWrittenAsGiven() throws IOException {
        JsonNode period = parse(OciJson.updateResources(new Spec.Resources(null, null, 50_000L, null, null, null)));
        assertThat(period.path("cpu").path("period").asLong()).isEqualTo(50_000);
        assertThat(period.path("cpu").has("quota")).isFalse();
        JsonNode quota = parse(OciJson.updateResources(new Spec.Resources(null, 50_000L, null, null, null, null)));
        assertThat(quota.path("cpu").path("quota").asLong()).isEqualTo(50_000);
        assertThat(quota.path("cpu").has("period")).as("no \"period\": null").isFalse();
        JsonNode spec = parse(OciJson.spec(Spec.builder()
                .resources(new Spec.Resources(null, null, 50_000L, null, null, null)).build(), "/a/b"));
        assertThat(spec.path("linux").path("resources").path("cpu").path("period").asLong()).isEqualTo(50_000);
    }

    @Test
    void theCgroupIsPerStateRoot(@TempDir Path temp) throws IOException {
        Path one = Files.createDirectories(temp.resolve("one"));
        Path link = Files.createSymbolicLink(temp.resolve("link"), one);
        String first = CgroupPaths.of(one, "ns", "id");
        assertThat(first).matches("/shimmer-[0-9a-f]{12}/ns/id");
        assertThat(CgroupPaths.of(temp.resolve("two"), "ns", "id")).isNotEqualTo(first);
        // One directory, one cgroup, however it is named; and the same before and after it exists.
        assertThat(CgroupPaths.of(link, "ns", "id")).isEqualTo(first);
        assertThat(CgroupPaths.of(temp.resolve("one/../one"), "ns", "id")).isEqualTo(first);
        String later = CgroupPaths.of(temp.resolve("later/state"), "ns", "id");
        Files.createDirectories(temp.resolve("later/state"));
        assertThat(CgroupPaths.of(temp.resolve("later/state"), "ns", "id")).isEqualTo(later);
        assertThat(parse(OciJson.spec(Spec.defaults(), first)).path("linux").path("cgroupsPath").asText())
                .isEqualTo(first);
    }

    @Test
    void aTerminalIsWrittenAsAsked() throws IOException {
        assertThat(parse(OciJson.execProcess(Spec.Process.builder().args("/bin/sh").terminal(true).build()))
                .path("terminal").asBoolean(false)).isTrue();
        assertThat(parse(OciJson.spec(Spec.builder().args("/bin/sh").terminal(true).build(), "/ns/id"))
                .path("process").path("terminal").asBoolean(false)).isTrue();
    }

    @Test
    void anExecNeedsACommandAndNullIsRefused() {
        assertThatThrownBy(() -> OciJson.execProcess(Spec.Process.builder().build()))
                .isInstanceOf(InvalidSpecException.class).hasMessageContaining("process.args");
        assertThatThrownBy(() -> OciJson.execProcess(null))
                .isInstanceOf(InvalidSpecException.class).hasMessageContaining("process");
        assertThatThrownBy(() -> OciJson.updateResources(null))
                .isInstanceOf(InvalidSpecException.class).hasMessageContaining("linux.resources");
    }
}
