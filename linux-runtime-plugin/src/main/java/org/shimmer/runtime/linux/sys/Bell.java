package org.shimmer.runtime.linux.sys;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * An {@code eventfd} that wakes a thread blocked in {@code poll(2)}: any thread rings, the poll thread watches
 * {@link #fd()} and {@linkplain #silence silences} it when it fires.
 */
public final class Bell implements AutoCloseable {

    private final int fd;

    public Bell() throws IOException {
        this.fd = LinuxCalls.eventfd();
    }

    /** The descriptor to poll for {@link LinuxCalls#POLLIN}. */
    public int fd() {
        return fd;
    }

    /** Wakes the poll thread; never blocks. */
    public void ring() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment one = arena.allocate(ValueLayout.JAVA_LONG);
            one.set(ValueLayout.JAVA_LONG, 0, 1L);
            LinuxCalls.write(fd, one, LinuxCalls.allocateCallState(arena));
        }
    }

    /** {@link #ring()}, logging rather than throwing: a failed ring only delays the poll thread by one timeout. */
    public void wake() {
        try {
            ring();
        } catch (IOException e) {
            org.slf4j.LoggerFactory.getLogger(Bell.class).warn("could not wake a poll thread", e);
        }
    }

    /** Resets the bell after it fired; call on the poll thread with an 8-byte buffer. */
    public void silence(MemorySegment buffer, MemorySegment state) throws IOException {
        LinuxCalls.read(fd, buffer, state);
    }

    @Override
    public void close() {
        LinuxCalls.close(fd);
    }
}
