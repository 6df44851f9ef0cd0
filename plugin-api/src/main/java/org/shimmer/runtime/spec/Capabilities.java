package org.shimmer.runtime.spec;

import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.shimmer.runtime.InvalidSpecException;

/**
 * The process's capability sets, each of names like {@code CAP_CHOWN} (given with or without the {@code CAP_}
 * prefix, any case; stored canonical). Names the kernel does not know are refused.
 */
public record Capabilities(Set<String> bounding, Set<String> effective, Set<String> permitted,
        Set<String> inheritable, Set<String> ambient) {

    /** Every capability by bit number: {@code KNOWN.get(n)} is capability {@code n}. */
    public static final List<String> KNOWN = List.of("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH",
            "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
            "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
            "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
            "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
            "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
            "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND",
            "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE");

    /**
     * containerd 1.x's default set for a container ({@code oci.populateDefaultUnixSpec}), Docker's too: the one
     * the shims we run against give. containerd 2.0 dropped {@code MKNOD}, {@code NET_RAW}, {@code SETFCAP},
     * {@code SYS_CHROOT} and {@code AUDIT_WRITE}; {@code dropCapability} gets there.
     */
    public static final Set<String> DEFAULT_SET = Set.of("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID",
            "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
            "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE");

    /** The default: {@link #DEFAULT_SET} bounding, effective and permitted, none inheritable or ambient. */
    public static final Capabilities DEFAULT = of(DEFAULT_SET);

    public Capabilities {
        bounding = canonical("process.capabilities.bounding", bounding);
        effective = canonical("process.capabilities.effective", effective);
        permitted = canonical("process.capabilities.permitted", permitted);
        inheritable = canonical("process.capabilities.inheritable", inheritable);
        ambient = canonical("process.capabilities.ambient", ambient);
        // The kernel's capset refuses an effective capability that is not permitted, and raising an ambient one
        // that is not both permitted and inheritable: runc fails at start. A permitted capability outside the
        // bounding set is lost at exec, as the kernel drops it, not refused.
        notIn("process.capabilities.effective", effective, "permitted", permitted);
        notIn("process.capabilities.ambient", ambient, "permitted", permitted);
        notIn("process.capabilities.ambient", ambient, "inheritable", inheritable);
    }

    private static void notIn(String field, Set<String> subset, String name, Set<String> superset) {
        for (String capability : subset) {
            if (!superset.contains(capability)) {
                throw InvalidSpecException.ofField(field, capability + " is not " + name);
            }
        }
    }

    /** {@code names} bounding, effective and permitted (what containerd's {@code WithCapabilities} sets). */
    public static Capabilities of(Collection<String> names) {
        Set<String> set = new LinkedHashSet<>(Checks.elements("process.capabilities", names));
        return new Capabilities(set, set, set, Set.of(), Set.of());
    }

    /** The capability's bit number, as in {@code CapEff} of {@code /proc/<pid>/status}. */
    public static int bit(String name) {
        return KNOWN.indexOf(canonicalName("capability", name));
    }

    /** The mask of a set, as {@code /proc/<pid>/status} shows it (hexadecimal). */
    public static long mask(Collection<String> names) {
        long mask = 0;
        for (String name : names) {
            mask |= 1L << bit(name);
        }
        return mask;
    }

    static String canonicalName(String field, String name) {
        Checks.noNul(field, name);
        // Upper-casing maps some other letters onto ASCII ones (dotless i to I, long s to S): "cap_ſys_admin" was
        // taken for CAP_SYS_ADMIN, past any check of the name the host made first.
        if (!name.chars().allMatch(c -> c < 128)) {
            throw InvalidSpecException.ofField(field, "unknown capability " + Checks.printable(name)
                    + ": not ASCII");
        }
        String upper = name.toUpperCase(Locale.ROOT);
        String canonical = upper.startsWith("CAP_") ? upper : "CAP_" + upper;
        if (!KNOWN.contains(canonical)) {
            throw InvalidSpecException.ofField(field, "unknown capability " + Checks.printable(name));
        }
        return canonical;
    }

    private static Set<String> canonical(String field, Set<String> names) {
        if (names == null) {
            return Set.of();
        }
        Set<String> result = new LinkedHashSet<>();
        for (String name : Checks.elements(field, names)) {
            result.add(canonicalName(field, name));
        }
        return Set.copyOf(result);
    }
}
