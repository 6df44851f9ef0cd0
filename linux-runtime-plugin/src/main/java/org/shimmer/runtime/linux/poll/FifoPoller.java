package org.shimmer.runtime.linux.poll;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.shimmer.runtime.linux.sys.Bell;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Flux;
import reactor.core.publisher.FluxSink;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;

/**
 * Reads any number of FIFOs with one thread and one buffer: a {@code poll(2)} loop over non-blocking read ends.
 *
 * <p>Invariants: a FIFO is polled only while its subscriber has outstanding demand, so a slow consumer leaves the
 * data in the pipe and, once the pipe is full, the writing process waits — nothing buffers output on our side
 * beyond the chunks asked for; every descriptor is an {@link OwnedFd} closed exactly once, by the poll thread, when
 * its FIFO reaches end of file, its subscriber cancels, or the poller closes; a FIFO is never accepted once the
 * poll thread has stopped (it would stay open, its subscriber waiting forever).
 *
 * <p>A FIFO opened non-blocking before any writer reports neither data nor hang-up until a writer has come (and,
 * for end of file, gone), so a reader may be opened before the process that will write exists.
 */
public final class FifoPoller implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(FifoPoller.class);
    private static final int CHUNK = 64 * 1024;
    private static final int MAX_WAIT_MILLIS = 1000;

    private final Queue<Reader> added = new ConcurrentLinkedQueue<>();
    private final List<Reader> readers = new ArrayList<>();
    private final AtomicBoolean closed = new AtomicBoolean();
    private final Object lifecycle = new Object();
    private boolean stopped;
    private final Bell bell;
    private final Thread thread;

    /** Starts the poll thread, named {@code threadName}. */
    public FifoPoller(String threadName) throws IOException {
        this.bell = new Bell();
        this.thread = Thread.ofPlatform().name(threadName).daemon(true).start(this::loop);
    }

    /** A FIFO opened for reading: its content for one subscriber, and when reading it has ended. */
    public interface FifoStream {
        /** The content as chunks; completes at end of file, when every writer has closed the FIFO. */
        Flux<byte[]> content();

        /** Completes once the FIFO is closed on our side: end of file, cancellation, discard or poller close. */
        Mono<Void> closed();

        /** Closes the FIFO now, whether or not anyone subscribed. */
        void discard();

        /** Whether {@link #content()} has a subscriber. */
        boolean subscribed();
    }

    /** Opens {@code fifo} for reading now, never blocking. */
    public FifoStream open(Path fifo) throws IOException {
        if (closed.get()) {
            throw new IOException("the FIFO poller is closed");
        }
        OwnedFd fd = OwnedFd.open(fifo, LinuxCalls.O_RDONLY | LinuxCalls.O_NONBLOCK | LinuxCalls.O_CLOEXEC);
        Reader reader = new Reader(fifo, fd);
        synchronized (lifecycle) {
            if (stopped) {
                fd.close();
                throw new IOException("the FIFO poller is closed");
            }
            added.add(reader);
        }
        bell.wake();
        Flux<byte[]> content = Flux.create(sink -> {
            if (!reader.subscribed.compareAndSet(false, true)) {
                sink.error(new IllegalStateException("the output of " + fifo + " has a subscriber already"));
                return;
            }
            reader.sink = sink;
            // Closed before anyone subscribed (discarded, or the poller stopped): nothing will come.
            if (reader.finished) {
                sink.complete();
                return;
            }
            sink.onRequest(n -> {
                reader.demand.getAndAccumulate(n, (current, more) -> current + more < 0 ? Long.MAX_VALUE
                        : current + more);
                bell.wake();
            });
            sink.onDispose(() -> {
                reader.cancelled = true;
                bell.wake();
            });
        }, FluxSink.OverflowStrategy.ERROR);
        return new FifoStream() {
            @Override
            public Flux<byte[]> content() {
                return content;
            }

            @Override
            public Mono<Void> closed() {
                return reader.done.asMono();
            }

            @Override
            public void discard() {
                reader.cancelled = true;
                bell.wake();
            }

            @Override
            public boolean subscribed() {
                return reader.subscribed.get();
            }
        };
    }

    /** Closes every FIFO still open (their subscribers complete) and stops the thread. */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            bell.wake();
            try {
                thread.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private void loop() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LinuxCalls.allocateCallState(arena);
            MemorySegment buffer = arena.allocate(CHUNK);
            MemorySegment bellBuffer = arena.allocate(ValueLayout.JAVA_LONG);
            MemorySegment fds = arena.allocate(LinuxCalls.POLLFD, 1);
            int capacity = 1;
            List<Reader> polled = new ArrayList<>();
            while (!closed.get()) {
                for (Reader reader; (reader = added.poll()) != null; ) {
                    readers.add(reader);
                }
                readers.removeIf(reader -> {
                    if (reader.cancelled) {
                        closeReader(reader, null);
                        return true;
                    }
                    return false;
                });
                polled.clear();
                for (Reader reader : readers) {
                    if (reader.demand.get() > 0 && reader.sink != null) {
                        polled.add(reader);
                    }
                }
                if (polled.size() + 1 > capacity) {
                    capacity = Math.max(polled.size() + 1, capacity * 2);
                    fds = arena.allocate(LinuxCalls.POLLFD, capacity);
                }
                LinuxCalls.setPollFd(fds, 0, bell.pollNumber(), LinuxCalls.POLLIN);
                for (int i = 0; i < polled.size(); i++) {
                    LinuxCalls.setPollFd(fds, i + 1, polled.get(i).fd.pollNumber(), LinuxCalls.POLLIN);
                }
                int ready = LinuxCalls.poll(fds, polled.size() + 1, MAX_WAIT_MILLIS, state);
                if (ready <= 0) {
                    continue;
                }
                if (LinuxCalls.pollRevents(fds, 0) != 0) {
                    bell.silence(bellBuffer, state);
                }
                for (int i = 0; i < polled.size(); i++) {
                    if (LinuxCalls.pollRevents(fds, i + 1) != 0) {
                        drain(polled.get(i), buffer, state);
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            log.error("the FIFO poller failed; its FIFOs are closed", e);
        } finally {
            synchronized (lifecycle) {
                stopped = true;
            }
            for (Reader reader; (reader = added.poll()) != null; ) {
                readers.add(reader);
            }
            for (Reader reader : readers) {
                closeReader(reader, null);
            }
            readers.clear();
            bell.close();
        }
    }

    /** Reads while there is demand and data; completes and forgets the reader at end of file. */
    private void drain(Reader reader, MemorySegment buffer, MemorySegment state) {
        try {
            while (reader.demand.get() > 0 && !reader.cancelled) {
                long n = reader.fd.read(buffer, state);
                if (n < 0) {
                    return;
                }
                if (n == 0) {
                    finish(reader, null);
                    return;
                }
                reader.demand.decrementAndGet();
                reader.sink.next(buffer.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE));
            }
        } catch (IOException e) {
            finish(reader, e);
        }
    }

    private void finish(Reader reader, IOException error) {
        readers.remove(reader);
        closeReader(reader, error);
    }

    /** Closes the descriptor and ends the subscriber; marked first, so a subscriber arriving later ends too. */
    private static void closeReader(Reader reader, IOException error) {
        reader.fd.close();
        reader.finished = true;
        FluxSink<byte[]> sink = reader.sink;
        if (sink != null) {
            if (error == null) {
                sink.complete();
            } else {
                sink.error(error);
            }
        }
        reader.done.tryEmitEmpty();
    }

    /** One open FIFO and its subscriber. */
    private static final class Reader {
        final Path fifo;
        final OwnedFd fd;
        final AtomicLong demand = new AtomicLong();
        final AtomicBoolean subscribed = new AtomicBoolean();
        final Sinks.Empty<Void> done = Sinks.empty();
        volatile FluxSink<byte[]> sink;
        volatile boolean cancelled;
        volatile boolean finished;

        Reader(Path fifo, OwnedFd fd) {
            this.fifo = fifo;
            this.fd = fd;
        }

        @Override
        public String toString() {
            return fifo.toString();
        }
    }
}
