package org.shimmer.runtime.linux.cleanup;

import java.time.Instant;

/**
 * This JVM as a launch record names it, read once: {@code ProcessHandle.info()} reads {@code /proc} on every call,
 * and the records are written and checked on every lifecycle.
 */
final class SelfProcess {

    static final long PID = ProcessHandle.current().pid();
    /** When it started, in epoch milliseconds; 0 when unknown (it then matches no record). */
    static final long START_MILLIS = ProcessHandle.current().info().startInstant().map(Instant::toEpochMilli)
            .orElse(0L);

    private SelfProcess() {}
}
