package org.shimmer.runtime.spec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
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

    /** A lone surrogate reached the process as U+FFFD: JSON escapes it, and runc decodes the escape so. */
    @Test
    void aLoneSurrogateIsRefusedWhereverAStringGoesToRuncAndAPairIsTaken() {
        rejects("process.args[1]", () -> Spec.builder().args("/bin/echo", "a\ud800b").build());
        rejects("process.args[0]", () -> Spec.builder().args("/bin/echo\udc00").build());
        rejects("process.env.A", () -> Spec.builder().env("A", "x\ud83d").build());
        rejects("process.env", () -> Spec.builder().env("\ude00A", "x").build());
        rejects("process.cwd", () -> Spec.builder().cwd("/tmp/\ud800").build());
        rejects("mounts.destination", () -> Mount.tmpfs("/data\udfff"));
        rejects("annotations.k", () -> Spec.builder().annotation("k", "\ud800\ud800").build());
        assertThatThrownBy(() -> Spec.builder().args("/bin/echo", "a\ud800b").build())
                .hasMessageContaining("lone surrogate U+D800 at index 1");
        String emoji = "\ud83d\ude00";
        assertThat(Spec.builder().args("/bin/echo", emoji).env("E", emoji).build().process().args())
                .containsExactly("/bin/echo", emoji);
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
    void unlimitedOpenFilesAreRefusedLinuxCapsThemAtNrOpen() {
        rejects("process.rlimits.hard",
                () -> Spec.builder().rlimit("RLIMIT_NOFILE", 1024, Rlimit.UNLIMITED).build());
        rejects("process.rlimits.hard",
                () -> Spec.builder().rlimit("RLIMIT_NOFILE", Rlimit.UNLIMITED, Rlimit.UNLIMITED).build());
    }

    @Test
    void unknownRlimit() {
        rejects("process.rlimits.type", () -> Spec.builder().rlimit("RLIMIT_BOGUS", 1, 1).build());
    }

    @Test
    void unknownCapabilityAdded() {
        rejects("process.capabilities", () -> Spec.builder().addCapability("CAP_FLY").build());
    }

    /** Upper-casing took "cap_ſys_admin" (long s) and "cap_kıll" (dotless i) for CAP_SYS_ADMIN and CAP_KILL. */
    @Test
    void aCapabilityNameThatOnlyUpperCasesToAKnownOne() {
        rejects("process.capabilities", () -> Spec.builder().addCapability("cap_\u017fys_admin").build());
        rejects("process.capabilities", () -> Spec.builder().dropCapability("cap_k\u0131ll").build());
        rejects("process.capabilities.bounding", () -> new Capabilities(Set.of("\u017fys_admin"), Set.of(), Set.of(),
                Set.of(), Set.of()));
        assertThat(Spec.builder().addCapability("sys_admin").build().process().capabilities().bounding())
                .contains("CAP_SYS_ADMIN");
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

    /** runc took it and the create failed with "error closing exec fds: open /proc/self/fd". */
    @Test
    void mountOverTheContainersRoot() {
        for (String root : List.of("/", "//", "/.", "/proc/..", "/tmp/../")) {
            rejects("mounts.destination", () -> Mount.tmpfs(root));
        }
        assertThat(Mount.tmpfs("/proc/../data").destination()).isEqualTo("/proc/../data");
    }

    /** runc masks only the paths under /proc and /sys: a proc at /proc2 had a writable /proc2/sys (real runc). */
    @Test
    void aSecondProcOrSysfsElsewhereWhilePathsAreMasked() {
        rejects("mounts", () -> Spec.builder().addMount(new Mount("/proc2", "proc", "proc", List.of())).build());
        rejects("mounts", () -> Spec.builder().addMount(new Mount("/host/sys", "sysfs", "sysfs", List.of())).build());
        rejects("mounts", () -> Spec.builder().readonlyPaths(List.of())
                .addMount(new Mount("/proc2", "proc", "proc", List.of())).build());
        assertThat(Spec.builder().addMount(new Mount("/proc/", "proc", "proc", List.of())).build().mounts())
                .hasSize(Spec.DEFAULT_MOUNTS.size() + 1);
        assertThat(Spec.builder().maskedPaths(List.of()).readonlyPaths(List.of())
                .addMount(new Mount("/proc2", "proc", "proc", List.of())).build().mounts())
                .hasSize(Spec.DEFAULT_MOUNTS.size() + 1);
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

    /** The kernel's pids.max takes at most PID_MAX_LIMIT (4194304): runc's create failed with EINVAL beyond. */
    @Test
    void pidsLimitAboveWhatTheKernelTakes() {
        rejects("linux.resources.pids.limit", () -> Spec.builder().pidsLimit(4_194_305).build());
        rejects("linux.resources.pids.limit", () -> Spec.builder().pidsLimit(Long.MAX_VALUE).build());
        assertThat(Spec.builder().pidsLimit(4_194_304).build().resources().pidsLimit()).isEqualTo(4_194_304L);
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

    // What follows runc 1.1.5 or the kernel refuses at create: the model refuses it at build, naming the field.

    @Test
    void cpusBelowOneHundredthAreRefusedNotRoundedUp() {
        rejects("cpus", () -> Spec.builder().cpus(0.001).build());
        assertThat(Spec.builder().cpus(0.01).build().resources().cpuQuota()).isEqualTo(1000);
    }

    @Test
    void cpusBeyondWhatTheKernelTakes() {
        rejects("cpus", () -> Spec.builder().cpus(1e300).build());
        rejects("cpus", () -> Spec.builder().cpus(1e9).build());
        assertThat(Spec.builder().cpus(1e6).build().resources().cpuQuota()).isEqualTo(100_000_000_000L);
    }

    @Test
    void cpuPeriodOutOfTheKernelsRange() {
        rejects("linux.resources.cpu.period", () -> Spec.Resources.builder().cpuQuota(10_000, 999).build());
        rejects("linux.resources.cpu.period", () -> Spec.Resources.builder().cpuQuota(10_000, 1_000_001).build());
        assertThat(Spec.Resources.builder().cpuQuota(1000, 1000).build().cpuPeriod()).isEqualTo(1000);
        assertThat(Spec.Resources.builder().cpuQuota(1000, 1_000_000).build().cpuPeriod()).isEqualTo(1_000_000);
    }

    @Test
    void cpuQuotaUnderOneMillisecondOrOverAMillionCpus() {
        rejects("linux.resources.cpu.quota", () -> Spec.Resources.builder().cpuQuota(999, 100_000).build());
        rejects("linux.resources.cpu.quota", () -> Spec.Resources.builder().cpuQuota(-1, 100_000).build());
        rejects("linux.resources.cpu.quota",
                () -> Spec.Resources.builder().cpuQuota(1_000_000L * 100_000 + 1, 100_000).build());
        rejects("linux.resources.cpu.quota",
                () -> new Spec.Resources(null, 1_000_000L * 100_000 + 1, null, null, null, null));
    }

    @Test
    void cpuSharesOutOfRange() {
        rejects("linux.resources.cpu.shares", () -> Spec.Resources.builder().cpuShares(1).build());
        rejects("linux.resources.cpu.shares", () -> Spec.Resources.builder().cpuShares(262_145).build());
        assertThat(Spec.Resources.builder().cpuShares(2).build().cpuShares()).isEqualTo(2);
        assertThat(Spec.Resources.builder().cpuShares(262_144).build().cpuShares()).isEqualTo(262_144);
    }

    @Test
    void cpusetCpusSyntax() {
        for (String bad : List.of("", "a", "0-", "-1", "0,,1", "0 1", "3-1", "0-3,", "1.5")) {
            rejects("linux.resources.cpu.cpus", () -> Spec.Resources.builder().cpusetCpus(bad).build());
        }
        for (String good : List.of("0", "0-3", "0-3,5", "1,3,7-9", "2-2")) {
            assertThat(Spec.Resources.builder().cpusetCpus(good).build().cpusetCpus()).isEqualTo(good);
        }
    }

    @Test
    void memoryLimitBelowDockersSixMebibyteFloor() {
        rejects("linux.resources.memory.limit", () -> Spec.builder().memoryLimit(6L * 1024 * 1024 - 1).build());
        rejects("linux.resources.memory.limit", () -> Spec.builder().memoryLimit(4096).build());
        assertThat(Spec.builder().memoryLimit(6L * 1024 * 1024).build().resources().memoryLimit())
                .isEqualTo(6L * 1024 * 1024);
    }

    @Test
    void hostnameTooLongOrWithInvalidCharacters() {
        rejects("hostname", () -> Spec.builder().hostname("a".repeat(65)).build());
        for (String bad : List.of("", "under_score", "-lead", "trail-", "a..b", "sp ace", "a/b", ".a")) {
            rejects("hostname", () -> Spec.builder().hostname(bad).build());
        }
        String longest = "x".repeat(30) + "." + "y".repeat(33);
        for (String good : List.of("a".repeat(63), "box", "web-1", "a.b.example", longest)) {
            assertThat(Spec.builder().hostname(good).build().hostname()).isEqualTo(good);
        }
    }

    @Test
    void maskedOrReadonlyPathsWithoutAMountNamespace() {
        rejects("linux.namespaces", () -> Spec.builder().withoutNamespace(Namespace.Type.MOUNT).build());
        rejects("linux.namespaces", () -> Spec.builder().withoutNamespace(Namespace.Type.MOUNT)
                .maskedPaths(List.of()).build());
        assertThat(Spec.builder().withoutNamespace(Namespace.Type.MOUNT).maskedPaths(List.of())
                .readonlyPaths(List.of()).build().namespaces()).extracting(Namespace::type)
                .doesNotContain(Namespace.Type.MOUNT);
    }

    @Test
    void userNamespaceIsRefusedTheModelHasNoMappings() {
        rejects("linux.namespaces", () -> Spec.builder().namespace(Namespace.of(Namespace.Type.USER)).build());
        rejects("linux.namespaces",
                () -> Spec.builder().namespace(Namespace.join(Namespace.Type.USER, "/proc/1/ns/user")).build());
    }

    @Test
    void timeNamespaceIsRefusedRunc11HasNone() {
        rejects("linux.namespaces", () -> Spec.builder().namespace(Namespace.of(Namespace.Type.TIME)).build());
    }

    @Test
    void effectiveCapabilityNotPermitted() {
        rejects("process.capabilities.effective", () -> Spec.builder().capabilities(new Capabilities(
                Set.of("CAP_KILL", "CAP_CHOWN"), Set.of("CAP_KILL", "CAP_CHOWN"), Set.of("CAP_KILL"), Set.of(),
                Set.of())).build());
    }

    @Test
    void ambientCapabilityNotPermittedAndInheritable() {
        rejects("process.capabilities.ambient", () -> new Capabilities(Set.of("CAP_KILL"), Set.of(),
                Set.of("CAP_KILL"), Set.of(), Set.of("CAP_KILL")));
        rejects("process.capabilities.ambient", () -> new Capabilities(Set.of("CAP_KILL"), Set.of(), Set.of(),
                Set.of("CAP_KILL"), Set.of("CAP_KILL")));
        assertThat(new Capabilities(Set.of("CAP_KILL"), Set.of(), Set.of("CAP_KILL"), Set.of("CAP_KILL"),
                Set.of("CAP_KILL")).ambient()).containsExactly("CAP_KILL");
    }

    @Test
    void negativeSeccompErrno() {
        rejects("linux.seccomp.defaultErrnoRet",
                () -> new Seccomp("SCMP_ACT_ERRNO", -1, List.of("SCMP_ARCH_X86_64"), List.of()));
        rejects("linux.seccomp.syscalls.errnoRet",
                () -> new Seccomp.Syscall(List.of("mount"), "SCMP_ACT_ERRNO", -38, List.of()));
    }

    /** runc refused 4095 to 65535 at create and cut larger ones to 16 bits: 65536 made a denied syscall succeed. */
    @Test
    void seccompErrnoAboveWhatRuncTakes() {
        for (int errno : new int[] {4095, 65535, 65536, 65537}) {
            rejects("linux.seccomp.defaultErrnoRet",
                    () -> new Seccomp("SCMP_ACT_ERRNO", errno, List.of("SCMP_ARCH_X86_64"), List.of()));
            rejects("linux.seccomp.syscalls.errnoRet",
                    () -> new Seccomp.Syscall(List.of("mkdir"), "SCMP_ACT_ERRNO", errno, List.of()));
        }
        assertThat(new Seccomp.Syscall(List.of("mkdir"), "SCMP_ACT_ERRNO", 4094, List.of()).errnoRet())
                .isEqualTo(4094);
    }

    @Test
    void seccompNotifyIsRefusedTheModelHasNoListenerPath() {
        rejects("linux.seccomp.defaultAction",
                () -> new Seccomp("SCMP_ACT_NOTIFY", null, List.of("SCMP_ARCH_X86_64"), List.of()));
        rejects("linux.seccomp.syscalls.action", () -> Seccomp.Syscall.of("SCMP_ACT_NOTIFY", "mount"));
    }

    @Test
    void seccompArchitectureOutsideRuncsList() {
        rejects("linux.seccomp.architectures",
                () -> new Seccomp("SCMP_ACT_ALLOW", null, List.of("SCMP_ARCH_PDP11"), List.of()));
        assertThat(new Seccomp("SCMP_ACT_ALLOW", null, List.of("SCMP_ARCH_S390X", "SCMP_ARCH_RISCV64"),
                List.of()).architectures()).hasSize(2);
    }

    @Test
    void emptySeccompSyscallName() {
        rejects("linux.seccomp.syscalls.names[1]", () -> Seccomp.Syscall.of("SCMP_ACT_ALLOW", "read", ""));
    }

    @Test
    void mountWithNeitherTypeNorSource() {
        rejects("mounts.type", () -> new Mount("/data", null, null, List.of()));
    }

    @Test
    void anEmptyOrSpacedMountTypeIsRefusedNamingIt() {
        assertThatThrownBy(() -> new Mount("/data", "", "tmpfs", List.of()))
                .isInstanceOf(InvalidSpecException.class).hasMessageContaining("mounts.type")
                .hasMessageContaining("\"\"").hasMessageContaining("/data");
        rejects("mounts.type", () -> new Mount("/data", "", "/srv", List.of("rbind")));
        rejects("mounts.type", () -> new Mount("/data", " ", "tmpfs", List.of()));
        rejects("mounts.type", () -> new Mount("/data", "tmp fs", "tmpfs", List.of()));
        rejects("mounts.type", () -> new Mount("/data", "tmpfs\n", "tmpfs", List.of()));
    }

    @Test
    void aTypelessMountMustBeABind() {
        rejects("mounts.type", () -> new Mount("/data", null, "/srv", List.of("ro")));
        assertThat(new Mount("/data", null, "/srv", List.of("rbind", "ro")).type()).isNull();
        assertThat(new Mount("/data", null, "/srv", List.of("bind")).type()).isNull();
    }

    @Test
    void defaultProfileOnAnUnknownArchitectureIsRefused() {
        rejects("linux.seccomp", () -> DefaultSeccompProfile.of(Capabilities.DEFAULT_SET, "s390x"));
        assertThat(DefaultSeccompProfile.of(Capabilities.DEFAULT_SET, "aarch64").architectures())
                .contains("SCMP_ARCH_AARCH64");
        assertThat(DefaultSeccompProfile.of(Capabilities.DEFAULT_SET, "amd64").architectures())
                .contains("SCMP_ARCH_X86_64");
    }

    // A null element anywhere fails naming the field, not with a NullPointerException.

    @Test
    void nullArg() {
        rejects("process.args[1]", () -> Spec.builder().args("/bin/echo", null).build());
        rejects("process.args[0]", () -> Spec.builder().process(Spec.Process.builder()
                .args(Arrays.asList((String) null)).build()));
    }

    @Test
    void nullCapability() {
        rejects("process.capabilities[1]", () -> Spec.builder().capabilities("CHOWN", null).build());
        rejects("process.capabilities[0]", () -> Capabilities.of(Arrays.asList((String) null)));
        Set<String> withNull = new HashSet<>(Arrays.asList("CAP_KILL", null));
        rejects("process.capabilities.bounding[0]",
                () -> new Capabilities(withNull, Set.of(), Set.of(), Set.of(), Set.of()));
    }

    @Test
    void nullMount() {
        rejects("mounts[8]", () -> {
            List<Mount> mounts = new ArrayList<>(Spec.DEFAULT_MOUNTS);
            mounts.add(null);
            Spec.builder().mounts(mounts).build();
        });
    }

    @Test
    void nullMountOption() {
        rejects("mounts.options[1]", () -> Mount.tmpfs("/data", "size=1m", null));
        rejects("mounts.options[0]", () -> new Mount("/data", "tmpfs", "tmpfs", Arrays.asList((String) null)));
    }

    @Test
    void nullGid() {
        Spec.Process process = Spec.defaults().process();
        rejects("process.user.additionalGids[1]", () -> new Spec.Process(List.of(), process.env(), "/", 0, 0,
                Arrays.asList(1, null), false, List.of(), process.capabilities(), true));
    }

    @Test
    void nullRlimit() {
        Spec.Process process = Spec.defaults().process();
        rejects("process.rlimits[0]", () -> new Spec.Process(List.of(), process.env(), "/", 0, 0, List.of(),
                false, Arrays.asList((Rlimit) null), process.capabilities(), true));
    }

    @Test
    void nullNamespace() {
        Spec spec = Spec.defaults();
        rejects("linux.namespaces[0]", () -> new Spec(spec.process(), null, spec.mounts(), "rootfs", false,
                Arrays.asList((Namespace) null), spec.resources(), null, List.of(), List.of(), Map.of()));
    }

    @Test
    void nullMaskedPath() {
        rejects("linux.maskedPaths[0]", () -> Spec.builder().maskedPaths(Arrays.asList((String) null)).build());
    }

    @Test
    void nullSeccompParts() {
        rejects("linux.seccomp.architectures[0]",
                () -> new Seccomp("SCMP_ACT_ALLOW", null, Arrays.asList((String) null), List.of()));
        rejects("linux.seccomp.syscalls[0]", () -> new Seccomp("SCMP_ACT_ALLOW", null, List.of(),
                Arrays.asList((Seccomp.Syscall) null)));
        rejects("linux.seccomp.syscalls.names[1]", () -> Seccomp.Syscall.of("SCMP_ACT_ALLOW", "read", null));
        rejects("linux.seccomp.syscalls.args[0]", () -> new Seccomp.Syscall(List.of("read"), "SCMP_ACT_ALLOW",
                null, Arrays.asList((Seccomp.Arg) null)));
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
