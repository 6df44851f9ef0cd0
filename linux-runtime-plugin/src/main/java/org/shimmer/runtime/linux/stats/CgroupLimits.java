package org.shimmer.runtime.linux.stats;

import java.util.OptionalLong;

/** How the cgroup formats spell "no limit", read back into an {@link OptionalLong} that is empty for it. */
final class CgroupLimits {

    /**
     * cgroup v1 reports an unlimited {@code memory.limit_in_bytes} as the largest page-aligned long
     * (9223372036854771712 with 4 KiB pages), and cgroup v2's "max" reaches us as 2^64-1, a negative long. Any
     * value at or above the largest 64 KiB-aligned long, or negative, is therefore "no limit" whatever the page
     * size; no real limit comes near it.
     */
    private static final long UNLIMITED_FROM = Long.MAX_VALUE & ~0xFFFFL;

    private CgroupLimits() {}

    /**
     * A memory limit: empty when unlimited, and when the answer has no memory section ({@code reported} false): a
     * protobuf message left out reads as 0, which was reported as a limit of 0 bytes where runc's JSON gives none.
     */
    static OptionalLong memory(boolean reported, long limit) {
        return !reported || limit < 0 || limit >= UNLIMITED_FROM ? OptionalLong.empty() : OptionalLong.of(limit);
    }

    /** A pids limit: empty when unlimited, which runc and containerd report as 0 for "max" (and 2^64-1 on v2). */
    static OptionalLong pids(long limit) {
        return limit <= 0 || limit >= UNLIMITED_FROM ? OptionalLong.empty() : OptionalLong.of(limit);
    }

    /** A value that 0 means the source did not report. */
    static OptionalLong reported(long value) {
        return value == 0 ? OptionalLong.empty() : OptionalLong.of(value);
    }
}
