package org.shimmer.runtime.spec;

import java.util.Set;
import org.shimmer.runtime.InvalidSpecException;

/**
 * A POSIX resource limit of the process, e.g. {@code RLIMIT_NOFILE}. Values are unsigned: {@link #UNLIMITED}
 * (all bits set) is infinity.
 */
public record Rlimit(String type, long soft, long hard) {

    /** RLIM_INFINITY. */
    public static final long UNLIMITED = -1L;

    private static final Set<String> TYPES = Set.of("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA",
            "RLIMIT_FSIZE", "RLIMIT_LOCKS", "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE",
            "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK");

    public Rlimit {
        Checks.required("process.rlimits.type", type);
        if (!TYPES.contains(type)) {
            throw InvalidSpecException.ofField("process.rlimits.type", "unknown rlimit " + Checks.printable(type));
        }
        if (Long.compareUnsigned(soft, hard) > 0) {
            throw InvalidSpecException.ofField("process.rlimits.soft",
                    type + " soft " + Long.toUnsignedString(soft) + " above hard " + Long.toUnsignedString(hard));
        }
        // Linux caps open files at fs.nr_open and has no infinity for them: runc's setrlimit failed with EPERM.
        if ("RLIMIT_NOFILE".equals(type) && hard == UNLIMITED) {
            throw InvalidSpecException.ofField("process.rlimits.hard",
                    "RLIMIT_NOFILE cannot be unlimited: Linux caps it at fs.nr_open");
        }
    }
}
