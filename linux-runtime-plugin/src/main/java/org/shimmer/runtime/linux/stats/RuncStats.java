package org.shimmer.runtime.linux.stats;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.util.OptionalLong;
import org.shimmer.runtime.shim.ContainerStats;
import org.shimmer.runtime.shim.Stats;

/**
 * Decodes the event {@code runc events --stats} prints: {@code {"type":"stats","id":…,"data":{…}}} with runc's
 * {@code types.Stats} as data. runc gives cgroup v1 and v2 the same shape (v2's microseconds already converted to
 * nanoseconds, io.stat rewritten as v1-style Read/Write entries); only {@code memory.raw}, the cgroup's own
 * {@code memory.stat}, keeps each version's names. runc omits zero counters, so an absent number is 0.
 */
public final class RuncStats {

    public static final String TYPE = "application/vnd.runc.stats+json";

    private static final ObjectMapper JSON = JsonMapper.builder().build();

    private RuncStats() {}

    /** The typed view of {@code raw}, whose value is one runc stats event. */
    public static ContainerStats decode(Stats raw) throws IOException {
        JsonNode data = JSON.readTree(raw.value()).path("data");
        if (!data.isObject()) {
            throw new IOException("no stats data in runc's event");
        }
        JsonNode cpu = data.path("cpu");
        JsonNode throttling = cpu.path("throttling");
        JsonNode memory = data.path("memory");
        JsonNode memoryRaw = memory.path("raw");
        JsonNode blkio = data.path("blkio");
        return new ContainerStats(
                new ContainerStats.Cpu(cpu.path("usage").path("total").asLong(),
                        cpu.path("usage").path("user").asLong(), cpu.path("usage").path("kernel").asLong(),
                        throttling.isObject() ? OptionalLong.of(throttling.path("throttledPeriods").asLong())
                                : OptionalLong.empty(),
                        throttling.isObject() ? OptionalLong.of(throttling.path("throttledTime").asLong())
                                : OptionalLong.empty()),
                new ContainerStats.Memory(memory.path("usage").path("usage").asLong(),
                        memoryLimit(memory.path("usage")),
                        CgroupLimits.reported(memory.path("usage").path("max").asLong()),
                        either(memoryRaw, "total_cache", "file"), either(memoryRaw, "total_rss", "anon")),
                new ContainerStats.Pids(data.path("pids").path("current").asLong(),
                        CgroupLimits.pids(data.path("pids").path("limit").asLong())),
                new ContainerStats.BlockIo(sum(blkio.path("ioServiceBytesRecursive"), "Read"),
                        sum(blkio.path("ioServiceBytesRecursive"), "Write"),
                        sum(blkio.path("ioServicedRecursive"), "Read"),
                        sum(blkio.path("ioServicedRecursive"), "Write")),
                raw);
    }

    /** runc always writes the limit (no omitempty); its absence means a usage entry runc did not fill. */
    private static OptionalLong memoryLimit(JsonNode usage) {
        return CgroupLimits.memory(usage.has("limit"), usage.path("limit").asLong());
    }

    /** {@code memory.stat}'s key on cgroup v1, else on v2; empty when neither is there. */
    private static OptionalLong either(JsonNode memoryStat, String v1, String v2) {
        if (memoryStat.has(v1)) {
            return OptionalLong.of(memoryStat.path(v1).asLong());
        }
        return memoryStat.has(v2) ? OptionalLong.of(memoryStat.path(v2).asLong()) : OptionalLong.empty();
    }

    /** One entry per device and op (Read, Write, Sync, Async, Discard, Total on v1): sum one op. */
    private static long sum(JsonNode entries, String op) {
        long total = 0;
        for (JsonNode entry : entries) {
            if (entry.path("op").asText().equalsIgnoreCase(op)) {
                total += entry.path("value").asLong();
            }
        }
        return total;
    }
}
