package org.shimmer.runtime.linux.stats;

import java.io.IOException;
import org.shimmer.runtime.shim.ContainerStats;
import org.shimmer.runtime.shim.ShimException;
import org.shimmer.runtime.shim.Stats;

/** Picks the decoder for what a shim reported, by its type: the one entry point both shims use. */
public final class StatsDecoder {

    private StatsDecoder() {}

    /**
     * The typed view of {@code raw}.
     *
     * @throws ShimException naming the type if it is unknown or its value does not decode
     */
    public static ContainerStats decode(Stats raw) {
        String type = raw.typeUrl();
        try {
            // An Any's type url may carry a host prefix (type.googleapis.com/…); the message name ends it.
            if (type.endsWith(CgroupV1Metrics.TYPE)) {
                return CgroupV1Metrics.decode(raw);
            }
            if (type.endsWith(CgroupV2Metrics.TYPE)) {
                return CgroupV2Metrics.decode(raw);
            }
            if (type.equals(RuncStats.TYPE)) {
                return RuncStats.decode(raw);
            }
        } catch (IOException e) {
            throw new ShimException("cannot decode stats of type " + type + ": " + e.getMessage(), e);
        }
        throw new ShimException("unknown stats type " + type);
    }
}
