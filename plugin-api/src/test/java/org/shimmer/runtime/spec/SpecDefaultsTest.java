package org.shimmer.runtime.spec;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** A spec built from nothing is what containerd gives a container. */
class SpecDefaultsTest {

    private final Spec spec = Spec.builder().build();

    @Test
    void processIsRootInSlashWithPathAndConfined() {
        Spec.Process process = spec.process();
        assertThat(process.args()).isEmpty();
        assertThat(process.env()).containsExactly(Map.entry("PATH", Spec.DEFAULT_PATH));
        assertThat(process.cwd()).isEqualTo("/");
        assertThat(process.uid()).isZero();
        assertThat(process.gid()).isZero();
        assertThat(process.terminal()).isFalse();
        assertThat(process.noNewPrivileges()).isTrue();
        assertThat(process.rlimits()).containsExactly(new Rlimit("RLIMIT_NOFILE", 1024, 1024));
    }

    @Test
    void capabilitiesAreContainerdsDefaultSetNoneInheritableOrAmbient() {
        Set<String> expected = Set.of("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE");
        Capabilities caps = spec.process().capabilities();
        assertThat(caps.bounding()).isEqualTo(expected);
        assertThat(caps.effective()).isEqualTo(expected);
        assertThat(caps.permitted()).isEqualTo(expected);
        assertThat(caps.inheritable()).isEmpty();
        assertThat(caps.ambient()).isEmpty();
        // CapEff as /proc/self/status shows it for that set.
        assertThat(Long.toHexString(Capabilities.mask(expected))).isEqualTo("a80425fb");
    }

    @Test
    void namespacesMountsAndPaths() {
        assertThat(spec.namespaces()).extracting(Namespace::type).containsExactly(Namespace.Type.PID,
                Namespace.Type.IPC, Namespace.Type.UTS, Namespace.Type.MOUNT, Namespace.Type.NETWORK);
        assertThat(spec.namespaces()).allSatisfy(namespace -> assertThat(namespace.path()).isNull());
        assertThat(spec.hostname()).isNull();
        assertThat(spec.rootPath()).isEqualTo("rootfs");
        assertThat(spec.readonlyRootfs()).isFalse();
        assertThat(spec.mounts()).extracting(Mount::destination).containsExactly("/proc", "/dev", "/dev/pts",
                "/dev/shm", "/dev/mqueue", "/sys", "/run", "/sys/fs/cgroup");
        assertThat(spec.mounts()).filteredOn(mount -> mount.destination().startsWith("/sys"))
                .allSatisfy(mount -> assertThat(mount.options()).contains("ro"));
        assertThat(spec.maskedPaths()).contains("/proc/kcore", "/proc/keys", "/sys/firmware", "/proc/timer_list");
        assertThat(spec.readonlyPaths()).containsExactly("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                "/proc/sysrq-trigger");
        assertThat(spec.resources()).isEqualTo(Spec.Resources.NONE);
        assertThat(spec.annotations()).isEmpty();
    }

    @Test
    void seccompDeniesWithEpermButWhatAContainerNeeds() {
        Seccomp seccomp = spec.seccomp();
        assertThat(seccomp.defaultAction()).isEqualTo("SCMP_ACT_ERRNO");
        assertThat(seccomp.defaultErrnoRet()).isEqualTo(Seccomp.EPERM);
        assertThat(seccomp.architectures()).containsAnyOf("SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64");
        assertThat(allowedWithoutCondition(seccomp)).contains("read", "write", "openat", "execve", "exit_group",
                        "futex", "epoll_wait", "chroot")
                .doesNotContain("kexec_load", "mount", "umount2", "unshare", "setns", "reboot", "init_module",
                        "add_key", "keyctl", "bpf", "clone", "clone3", "socket",
                        "personality", "open_by_handle_at", "swapon", "swapoff");
        // clone only without namespace flags, clone3 refused with ENOSYS so libc falls back to clone.
        assertThat(seccomp.syscalls()).anySatisfy(rule -> {
            assertThat(rule.names()).containsExactly("clone");
            assertThat(rule.args()).containsExactly(new Seccomp.Arg(0, 0x7E020000L, 0, "SCMP_CMP_MASKED_EQ"));
        });
        assertThat(seccomp.syscalls()).anySatisfy(rule -> {
            assertThat(rule.names()).containsExactly("clone3");
            assertThat(rule.action()).isEqualTo("SCMP_ACT_ERRNO");
            assertThat(rule.errnoRet()).isEqualTo(38);
        });
        // socket anything but AF_ALG (38) and AF_VSOCK (40); personality only to the safe personas.
        assertThat(seccomp.syscalls()).filteredOn(rule -> rule.names().equals(List.of("socket")))
                .flatExtracting(Seccomp.Syscall::args).containsExactly(new Seccomp.Arg(0, 38, 0, "SCMP_CMP_LT"),
                        new Seccomp.Arg(0, 39, 0, "SCMP_CMP_EQ"), new Seccomp.Arg(0, 40, 0, "SCMP_CMP_GT"));
        assertThat(seccomp.syscalls()).filteredOn(rule -> rule.names().equals(List.of("personality")))
                .flatExtracting(Seccomp.Syscall::args).extracting(Seccomp.Arg::value)
                .containsExactly(0L, 8L, 0x20000L, 0x20008L, 0xffffffffL);
    }

    @Test
    void seccompFollowsTheCapabilitiesLikeContainerds() {
        Spec admin = Spec.builder().addCapability("SYS_ADMIN").dropCapability("CAP_SYS_CHROOT").build();
        Set<String> allowed = allowedWithoutCondition(admin.seccomp());
        assertThat(allowed).contains("mount", "unshare", "setns", "clone", "clone3").doesNotContain("chroot");
        assertThat(admin.seccomp().syscalls()).noneSatisfy(rule -> assertThat(rule.args()).isNotEmpty()
                .allSatisfy(arg -> assertThat(arg.op()).isEqualTo("SCMP_CMP_MASKED_EQ")));
        // Through toBuilder too: a default profile stays the default and follows later changes.
        Spec back = admin.toBuilder().dropCapability("SYS_ADMIN").build();
        assertThat(allowedWithoutCondition(back.seccomp())).doesNotContain("mount", "clone");
        assertThat(back.seccomp()).isEqualTo(Seccomp.defaultProfile(back.process().capabilities().bounding()));
    }

    @Test
    void unconfinedAndExplicitProfilesAreKept() {
        assertThat(Spec.builder().seccompUnconfined().build().seccomp()).isNull();
        Seccomp mine = new Seccomp("SCMP_ACT_ALLOW", null, List.of("SCMP_ARCH_X86_64"),
                List.of(Seccomp.Syscall.of("SCMP_ACT_ERRNO", "mkdir")));
        Spec spec = Spec.builder().seccomp(mine).build();
        assertThat(spec.seccomp()).isEqualTo(mine);
        assertThat(spec.toBuilder().addCapability("SYS_ADMIN").build().seccomp()).isEqualTo(mine);
    }

    @Test
    void builderSettersLandWhereExpected() {
        Spec built = Spec.builder().args("/bin/sh", "-c", "echo hi").env("A", "1").cwd("/tmp").user(1000, 100)
                .hostname("box").readonlyRootfs(true).memoryLimit(64 << 20).cpus(1.5).pidsLimit(32)
                .rlimit("RLIMIT_NOFILE", 2048, 4096).annotation("k", "v").rootPath("/abs/rootfs")
                .addMount(Mount.tmpfs("/scratch", "size=1m")).build();
        assertThat(built.process().args()).containsExactly("/bin/sh", "-c", "echo hi");
        assertThat(built.process().env()).containsEntry("A", "1").containsKey("PATH");
        assertThat(built.process().rlimits()).containsExactly(new Rlimit("RLIMIT_NOFILE", 2048, 4096));
        assertThat(built.resources()).isEqualTo(new Spec.Resources(64L << 20, 150_000L, 100_000L, null, null, 32L));
        assertThat(built.mounts()).last().isEqualTo(Mount.tmpfs("/scratch", "size=1m"));
        assertThat(built.toBuilder().build()).isEqualTo(built);
        assertThat(Spec.Process.builder().build()).isEqualTo(Spec.builder().build().process());
    }

    private static Set<String> allowedWithoutCondition(Seccomp seccomp) {
        return seccomp.syscalls().stream()
                .filter(rule -> rule.action().equals("SCMP_ACT_ALLOW") && rule.args().isEmpty())
                .flatMap(rule -> rule.names().stream())
                .collect(Collectors.toSet());
    }
}
