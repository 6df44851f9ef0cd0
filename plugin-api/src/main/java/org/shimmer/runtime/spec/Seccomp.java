package org.shimmer.runtime.spec;

import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import org.shimmer.runtime.InvalidSpecException;

/**
 * A seccomp filter: {@code defaultAction} for every syscall no rule matches, {@code defaultErrnoRet} the errno of
 * an {@code SCMP_ACT_ERRNO} default, the architectures it applies to, and the rules.
 */
public record Seccomp(String defaultAction, Integer defaultErrnoRet, List<String> architectures,
        List<Syscall> syscalls) {

    /** EPERM, the errno of a denied syscall. */
    public static final int EPERM = 1;

    /**
     * The largest errno an {@code SCMP_ACT_ERRNO} action returns through runc 1.1.5 and libseccomp 2.5.4: from
     * 4095 to 65535 the create fails ("two checks on same syscall argument"), and above 65535 only the low 16 bits
     * were kept, so 65536 made the denied syscall return 0 without running.
     */
    public static final int MAX_ERRNO = 4094;

    // SCMP_ACT_NOTIFY is left out: it needs a listener path, which the model has not.
    private static final Set<String> ACTIONS = Set.of("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW",
            "SCMP_ACT_LOG");

    /** The architectures runc 1.1 knows; it refuses any other name at create. */
    public static final Set<String> ARCHITECTURES = Set.of("SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32",
            "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
            "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
            "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_RISCV64");
    private static final Set<String> OPERATORS = Set.of("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",
            "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ");

    public Seccomp {
        requireAction("linux.seccomp.defaultAction", defaultAction);
        errno("linux.seccomp.defaultErrnoRet", defaultAction, defaultErrnoRet);
        architectures = Checks.elements("linux.seccomp.architectures", architectures);
        for (String arch : architectures) {
            if (!ARCHITECTURES.contains(arch)) {
                throw InvalidSpecException.ofField("linux.seccomp.architectures",
                        "unknown architecture " + Checks.printable(arch));
            }
        }
        syscalls = Checks.elements("linux.seccomp.syscalls", syscalls);
    }

    /**
     * containerd's default profile for a process with {@code capabilities} in its bounding set: deny with EPERM
     * but the syscalls a container needs, plus those the capabilities make safe (like containerd, the profile
     * follows the capabilities).
     */
    public static Seccomp defaultProfile(Collection<String> capabilities) {
        return DefaultSeccompProfile.of(Set.copyOf(capabilities), System.getProperty("os.arch"));
    }

    /** A rule: {@code action} for the syscalls {@code names} when all {@code args} match. */
    public record Syscall(List<String> names, String action, Integer errnoRet, List<Arg> args) {

        public Syscall {
            names = Checks.noNulEach("linux.seccomp.syscalls.names", names);
            if (names.isEmpty()) {
                throw InvalidSpecException.ofField("linux.seccomp.syscalls.names", "empty");
            }
            for (int i = 0; i < names.size(); i++) {
                if (names.get(i).isBlank()) {
                    throw InvalidSpecException.ofField("linux.seccomp.syscalls.names[" + i + "]", "empty name");
                }
            }
            requireAction("linux.seccomp.syscalls.action", action);
            errno("linux.seccomp.syscalls.errnoRet", action, errnoRet);
            args = Checks.elements("linux.seccomp.syscalls.args", args == null ? List.of() : args);
        }

        /** {@code action} for {@code names} whatever their arguments. */
        public static Syscall of(String action, String... names) {
            return new Syscall(Arrays.asList(Checks.required("linux.seccomp.syscalls.names", names)), action, null,
                    List.of());
        }
    }

    /** A condition on argument {@code index} (0 to 5): {@code op} compares it with {@code value}. */
    public record Arg(int index, long value, long valueTwo, String op) {

        public Arg {
            if (index < 0 || index > 5) {
                throw InvalidSpecException.ofField("linux.seccomp.syscalls.args.index",
                        "must be 0 to 5, was " + index);
            }
            Checks.required("linux.seccomp.syscalls.args.op", op);
            if (!OPERATORS.contains(op)) {
                throw InvalidSpecException.ofField("linux.seccomp.syscalls.args.op",
                        "unknown operator " + Checks.printable(op));
            }
        }
    }

    private static void errno(String field, String action, Integer errno) {
        if (errno != null && errno < 0) {
            throw InvalidSpecException.ofField(field, "negative errno " + errno);
        }
        if (errno != null && errno > MAX_ERRNO && "SCMP_ACT_ERRNO".equals(action)) {
            throw InvalidSpecException.ofField(field, "errno " + errno + " above " + MAX_ERRNO
                    + ", the largest runc's seccomp takes (above 65535 it kept only the low 16 bits)");
        }
    }

    private static void requireAction(String field, String action) {
        Checks.required(field, action);
        if (!ACTIONS.contains(action)) {
            throw InvalidSpecException.ofField(field, "unknown action " + Checks.printable(action));
        }
    }
}
