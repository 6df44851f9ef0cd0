package org.shimmer.runtime.linux.sys;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An {@code eventfd} that wakes a thread blocked in {@code poll(2)}: any thread rings, the poll thread watches
 * {@link #pollNumber()} and {@linkplain #silence silences} it when it fires, and closes it when it stops.
 *
 * <p>Invariant: a ring after close never touches the old descriptor number (it is {@link OwnedFd}); it is refused,
 * and {@link #wake()} ignores the refusal, since a closed bell has no poll thread left to wake.
 */
public final class Bell implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(Bell.class);

    private final OwnedFd fd;

    public Bell() throws IOException {
        this(OwnedFd.eventfd());
    }

    /** Rings {@code eventfd}, which stays owned by whoever polls it (a poll loop's registration, say). */
    public Bell(OwnedFd eventfd) {
        this.fd = eventfd;
    }

    /** The descriptor to poll for {@link LinuxCalls#POLLIN}; only for the poll thread, which alone closes it. */
    public int pollNumber() throws IOException {
        return fd.pollNumber();
    }

    /** Wakes the poll thread; never blocks. */
    public void ring() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment one = arena.allocate(ValueLayout.JAVA_LONG);
            one.set(ValueLayout.JAVA_LONG, 0, 1L);
            fd.write(one, LinuxCalls.allocateCallState(arena));
        }
    }

    /**
     * {@link #ring()}, never throwing: a closed bell is left alone, and any other failure is logged, as it only
     * delays the poll thread by one timeout.
     */
    public void wake() {
        try {
            ring();
        } catch (OwnedFd.ClosedException closed) {
            // The poll thread has stopped: nothing to wake.
        } catch (IOException e) {
            log.warn("could not wake a poll thread", e);
        }
    }

    /** Resets the bell after it fired; call on the poll thread with an 8-byte buffer. */
    public void silence(MemorySegment buffer, MemorySegment state) throws IOException {
        fd.read(buffer, state);
    }

    /** Closes the eventfd, once a ring in flight has finished; rings after it are refused. */
    @Override
    public void close() {
        fd.close();
    }
}
