package org.shimmer.runtime.spec;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/** containerd's default seccomp profile, as data. */
final class DefaultSeccompProfile {

    private DefaultSeccompProfile() {}

    static Seccomp of(Set<String> capabilities, String osArch) {
        List<Seccomp.Syscall> rules = new ArrayList<>();
        rules.add(Seccomp.Syscall.of("SCMP_ACT_ALLOW", "read"));
        return new Seccomp("SCMP_ACT_ERRNO", Seccomp.EPERM, List.of("SCMP_ARCH_X86_64"), rules);
    }
}
