package org.shimmer.runtime.spec;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.shimmer.runtime.InvalidSpecException;

/**
 * containerd's default seccomp profile (the one moby ships too), as data: deny with EPERM, allow what a container
 * needs, and allow more as the bounding capabilities make it safe. Kernel-version conditions are taken as met: the
 * plugin needs a kernel newer than any of them (pidfd, 5.3).
 */
final class DefaultSeccompProfile {

    private static final String ALLOW = "SCMP_ACT_ALLOW";
    private static final String MASKED_EQ = "SCMP_CMP_MASKED_EQ";
    private static final String EQ = "SCMP_CMP_EQ";

    /** Syscalls every container may make, whatever its capabilities or architecture. */
    private static final List<String> ALWAYS = names("""
            _llseek _newselect accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir
            chmod chown chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
            clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range
            creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2
            epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2
            fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32
            fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat
            fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64
            futex_wait futex_waitv futex_wake futimesat get_robust_list get_thread_area getcpu getcwd
            getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32
            getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32
            getresuid getresuid32 getrlimit getrusage getsid getsockname getsockopt gettid gettimeofday
            getuid getuid32 getxattr getxattrat inotify_add_watch inotify_init inotify_init1
            inotify_rm_watch io_cancel io_destroy io_getevents io_pgetevents io_pgetevents_time64 io_setup
            io_submit ioctl ioprio_get ioprio_set ipc kill landlock_add_rule landlock_create_ruleset
            landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listmount listxattr
            listxattrat llistxattr lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack
            membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall
            mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64
            mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync
            munlock munlockall munmap name_to_handle_at nanosleep newfstatat open openat openat2 pause
            pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll
            ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64
            pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg
            recvmmsg_time64 recvmsg remap_file_pages removexattr removexattrat rename renameat renameat2
            restart_syscall riscv_hwprobe rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask
            rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
            rt_tgsigqueueinfo sched_get_priority_max sched_get_priority_min sched_getaffinity sched_getattr
            sched_getparam sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
            sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select
            semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg
            sendto set_robust_list set_thread_area set_tid_address setfsgid setfsgid32 setfsuid setfsuid32
            setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid setregid32
            setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit setsid setsockopt
            setuid setuid32 setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack signalfd
            signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64
            statmount statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time
            timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
            timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
            timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat
            uretprobe utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write
            writev
            process_vm_readv process_vm_writev ptrace
            """);

    /** Syscalls a capability makes safe to allow, by capability. */
    private static final Map<String, List<String>> BY_CAPABILITY = Map.ofEntries(
            Map.entry("CAP_DAC_READ_SEARCH", List.of("open_by_handle_at")),
            Map.entry("CAP_SYS_ADMIN", names("""
                    bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie lsm_get_self_attr
                    lsm_list_modules lsm_set_self_attr mount mount_setattr move_mount open_tree perf_event_open
                    quotactl quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare
                    """)),
            Map.entry("CAP_SYS_BOOT", List.of("reboot")),
            Map.entry("CAP_SYS_CHROOT", List.of("chroot")),
            Map.entry("CAP_SYS_MODULE", List.of("delete_module", "init_module", "finit_module")),
            Map.entry("CAP_SYS_PACCT", List.of("acct")),
            Map.entry("CAP_SYS_PTRACE",
                    List.of("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
                            "ptrace")),
            Map.entry("CAP_SYS_RAWIO", List.of("iopl", "ioperm")),
            Map.entry("CAP_SYS_TIME", List.of("settimeofday", "stime", "clock_settime", "clock_settime64")),
            Map.entry("CAP_SYS_TTY_CONFIG", List.of("vhangup")),
            Map.entry("CAP_SYS_NICE",
                    List.of("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node")),
            Map.entry("CAP_SYSLOG", List.of("syslog")),
            Map.entry("CAP_BPF", List.of("bpf")),
            Map.entry("CAP_PERFMON", List.of("perf_event_open")));

    // Address families socket(2) may not open: AF_ALG (38) and AF_VSOCK (40), a way out of a VM's guest.
    private static final long AF_ALG = 38;
    private static final long AF_VSOCK = 40;

    // personality(2) personas a container may switch to: PER_LINUX, PER_LINUX32 (8), UNAME26 (0x20000), both
    // (0x20008), and 0xffffffff, which only queries.
    private static final long[] PERSONAS = {0x0, 0x8, 0x20000, 0x20008, 0xffffffffL};

    // The CLONE_NEW* flags (ns, uts, ipc, user, pid, net, cgroup): without CAP_SYS_ADMIN, clone may make no
    // namespace.
    private static final long CLONE_NAMESPACE_FLAGS = 0x7E020000L;

    // clone3 passes its flags in a struct seccomp cannot look into: ENOSYS makes libc fall back to clone.
    private static final int ENOSYS = 38;

    private DefaultSeccompProfile() {}

    static Seccomp of(Set<String> capabilities, String osArch) {
        List<Seccomp.Syscall> rules = new ArrayList<>();
        List<String> allowed = new ArrayList<>(ALWAYS);
        boolean arm = "aarch64".equals(osArch) || "arm".equals(osArch);
        boolean x86 = "amd64".equals(osArch) || "x86_64".equals(osArch);
        // Other architectures differ in more than names (s390x passes clone's flags in argument 1): no guess.
        if (!arm && !x86) {
            throw InvalidSpecException.ofField("linux.seccomp", "no default profile for architecture "
                    + Checks.printable(osArch) + ": give one with seccomp(...), or seccompUnconfined()");
        }
        List<String> architectures;
        if (arm) {
            architectures = List.of("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM");
            allowed.addAll(List.of("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                    "cacheflush", "set_tls"));
        } else {
            architectures = List.of("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32");
            allowed.addAll(List.of("arch_prctl", "modify_ldt"));
        }
        rules.add(new Seccomp.Syscall(allowed, ALLOW, null, List.of()));
        rules.add(allowIf("socket", new Seccomp.Arg(0, AF_ALG, 0, "SCMP_CMP_LT")));
        rules.add(allowIf("socket", new Seccomp.Arg(0, AF_ALG + 1, 0, EQ)));
        rules.add(allowIf("socket", new Seccomp.Arg(0, AF_VSOCK, 0, "SCMP_CMP_GT")));
        for (long persona : PERSONAS) {
            rules.add(allowIf("personality", new Seccomp.Arg(0, persona, 0, EQ)));
        }
        BY_CAPABILITY.entrySet().stream()
                .filter(entry -> capabilities.contains(entry.getKey()))
                .sorted(Map.Entry.comparingByKey(
                        (left, right) -> Integer.compare(Capabilities.bit(left), Capabilities.bit(right))))
                .forEach(entry -> rules.add(new Seccomp.Syscall(entry.getValue(), ALLOW, null, List.of())));
        if (!capabilities.contains("CAP_SYS_ADMIN")) {
            rules.add(allowIf("clone", new Seccomp.Arg(0, CLONE_NAMESPACE_FLAGS, 0, MASKED_EQ)));
            rules.add(new Seccomp.Syscall(List.of("clone3"), "SCMP_ACT_ERRNO", ENOSYS, List.of()));
        }
        return new Seccomp("SCMP_ACT_ERRNO", Seccomp.EPERM, architectures, rules);
    }

    private static Seccomp.Syscall allowIf(String name, Seccomp.Arg arg) {
        return new Seccomp.Syscall(List.of(name), ALLOW, null, List.of(arg));
    }

    private static List<String> names(String block) {
        return List.copyOf(Arrays.asList(block.strip().split("\\s+")));
    }
}
