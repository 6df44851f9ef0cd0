package org.shimmer.runtime.spec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.shimmer.runtime.InvalidSpecException;

/** Every field the model can tell is invalid fails the build with an error naming the field. */
class SpecValidationTest {

    private static void rejects(String field, Executable build) {
        assertThatThrownBy(build::execute).isInstanceOfSatisfying(InvalidSpecException.class, e -> {
            assertThat(e.field()).isEqualTo(field);
            assertThat(e.getMessage()).contains(field);
        });
    }

    @Test
    void emptyArgsAreFineAnImageSuppliesThem() {
        assertThat(Spec.builder().args().build().process().args()).isEmpty();
    }

    @Test
    void nulInAnArg() {
        rejects("process.args[1]", () -> Spec.builder().args("/bin/echo", "a\0b").build());
    }

    @Test
    void envNameWithEquals() {
        rejects("process.env", () -> Spec.builder().env("A=B", "c").build());
    }

    @Test
    void emptyEnvName() {
        rejects("process.env", () -> Spec.builder().env("", "c").build());
    }

    @Test
    void nulInEnvName() {
        rejects("process.env", () -> Spec.builder().env("A\0", "c").build());
    }

    @Test
    void nulInEnvValue() {
        rejects("process.env.A", () -> Spec.builder().env("A", "c\0").build());
    }

    @Test
    void relativeCwd() {
        rejects("process.cwd", () -> Spec.builder().cwd("tmp").build());
    }

    @Test
    void negativeUid() {
        rejects("process.user.uid", () -> Spec.builder().user(-1, 0).build());
    }

    @Test
    void negativeGid() {
        rejects("process.user.gid", () -> Spec.builder().user(0, -2).build());
    }

    @Test
    void negativeAdditionalGid() {
        rejects("process.user.additionalGids", () -> Spec.builder().additionalGids(10, -1).build());
    }

    @Test
    void rlimitSoftAboveHard() {
        rejects("process.rlimits.soft", () -> Spec.builder().rlimit("RLIMIT_NOFILE", 2048, 1024).build());
    }

    @Test
    void unlimitedHardTakesAnySoft() {
        assertThat(Spec.builder().rlimit("RLIMIT_CORE", 0, Rlimit.UNLIMITED).build().process().rlimits())
                .contains(new Rlimit("RLIMIT_CORE", 0, Rlimit.UNLIMITED));
    }

    @Test
    void unknownRlimit() {
        rejects("process.rlimits.type", () -> Spec.builder().rlimit("RLIMIT_BOGUS", 1, 1).build());
    }

    @Test
    void unknownCapabilityAdded() {
        rejects("process.capabilities", () -> Spec.builder().addCapability("CAP_FLY").build());
    }

    @Test
    void unknownCapabilityInASet() {
        rejects("process.capabilities.bounding", () -> Spec.builder().capabilities("CHOWN", "TELEPORT").build());
    }

    @Test
    void duplicateNamespaces() {
        rejects("linux.namespaces", () -> Spec.builder().namespaces(List.of(Namespace.of(Namespace.Type.PID),
                Namespace.join(Namespace.Type.PID, "/proc/1/ns/pid"))).build());
    }

    @Test
    void duplicateNamespacesInTheRecord() {
        Spec spec = Spec.defaults();
        rejects("linux.namespaces", () -> new Spec(spec.process(), null, spec.mounts(), "rootfs", false,
                List.of(Namespace.of(Namespace.Type.UTS), Namespace.of(Namespace.Type.UTS)), spec.resources(),
                null, List.of(), List.of(), Map.of()));
    }

    @Test
    void relativeNamespacePath() {
        rejects("linux.namespaces.path", () -> Namespace.join(Namespace.Type.NETWORK, "proc/1/ns/net"));
    }

    @Test
    void hostnameWithoutUtsNamespace() {
        rejects("hostname", () -> Spec.builder().hostname("box").withoutNamespace(Namespace.Type.UTS).build());
    }

    @Test
    void relativeMountDestination() {
        rejects("mounts.destination", () -> Spec.builder().addMount(Mount.tmpfs("data")).build());
    }

    @Test
    void relativeBindSource() {
        rejects("mounts.source", () -> Mount.bind("data", "/data", true));
    }

    @Test
    void emptyRootPath() {
        rejects("root.path", () -> Spec.builder().rootPath("").build());
    }

    @Test
    void nullRootPath() {
        rejects("root.path", () -> Spec.builder().rootPath(null).build());
    }

    @Test
    void zeroMemoryLimit() {
        rejects("linux.resources.memory.limit", () -> Spec.builder().memoryLimit(0).build());
    }

    @Test
    void negativeMemoryLimit() {
        rejects("linux.resources.memory.limit", () -> Spec.builder().memoryLimit(-1).build());
    }

    @Test
    void negativePidsLimit() {
        rejects("linux.resources.pids.limit", () -> Spec.builder().pidsLimit(-5).build());
    }

    @Test
    void nanCpus() {
        rejects("cpus", () -> Spec.builder().cpus(Double.NaN).build());
    }

    @Test
    void negativeCpus() {
        rejects("cpus", () -> Spec.builder().cpus(-0.5).build());
    }

    @Test
    void infiniteCpus() {
        rejects("cpus", () -> Spec.builder().cpus(Double.POSITIVE_INFINITY).build());
    }

    @Test
    void zeroCpuShares() {
        rejects("linux.resources.cpu.shares", () -> Spec.Resources.builder().cpuShares(0).build());
    }

    @Test
    void zeroCpuPeriod() {
        rejects("linux.resources.cpu.period", () -> Spec.Resources.builder().cpuQuota(1000, 0).build());
    }

    @Test
    void relativeMaskedPath() {
        rejects("linux.maskedPaths[0]", () -> Spec.builder().maskedPaths(List.of("proc/kcore")).build());
    }

    @Test
    void relativeReadonlyPath() {
        rejects("linux.readonlyPaths[1]", () -> Spec.builder().readonlyPaths(List.of("/proc", "sys")).build());
    }

    @Test
    void emptyAnnotationKey() {
        rejects("annotations", () -> Spec.builder().annotation("", "v").build());
    }

    @Test
    void unknownSeccompAction() {
        rejects("linux.seccomp.defaultAction", () -> new Seccomp("SCMP_ACT_MAYBE", null, List.of(), List.of()));
    }

    @Test
    void unknownSeccompArchitecture() {
        rejects("linux.seccomp.architectures", () -> new Seccomp("SCMP_ACT_ALLOW", null, List.of("x86"),
                List.of()));
    }

    @Test
    void seccompRuleWithoutNames() {
        rejects("linux.seccomp.syscalls.names", () -> new Seccomp.Syscall(List.of(), "SCMP_ACT_ALLOW", null, null));
    }

    @Test
    void seccompArgIndexOutOfRange() {
        rejects("linux.seccomp.syscalls.args.index", () -> new Seccomp.Arg(6, 0, 0, "SCMP_CMP_EQ"));
    }

    @Test
    void unknownSeccompOperator() {
        rejects("linux.seccomp.syscalls.args.op", () -> new Seccomp.Arg(0, 0, 0, "SCMP_CMP_ABOUT"));
    }

    @Test
    void nullProcess() {
        rejects("process", () -> Spec.builder().process(null));
    }
}
