package org.shimmer.runtime.linux.poll;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.reactivestreams.Publisher;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Flux;
import reactor.core.publisher.FluxSink;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import reactor.core.scheduler.Scheduler;

/**
 * Reads any number of FIFOs on the runtime's one {@link PollLoop}, with one buffer: non-blocking read ends, read
 * when {@code poll(2)} says they are ready.
 *
 * <p>Invariants: a FIFO is polled only while its subscriber has outstanding demand, so a slow consumer leaves the
 * data in the pipe and, once the pipe is full, the writing process waits — nothing buffers output on our side
 * beyond the chunks asked for; a subscriber that cancels does not close the FIFO: what follows is read and dropped
 * (as a terminal's output is), since a closed read end killed a local container with {@code SIGPIPE} and left a
 * remote shim's copy, and so its process, blocked for good; every descriptor is owned by its
 * {@link PollLoop.Registration} and closed exactly once, by the poll thread, when its FIFO reaches end of file, it
 * is discarded, or the loop closes; a FIFO is never accepted once the loop has stopped (it would stay open, its
 * subscriber waiting forever).
 *
 * <p>A FIFO opened non-blocking before any writer reports neither data nor hang-up until a writer has come (and,
 * for end of file, gone), so a reader may be opened before the process that will write exists.
 */
public final class FifoPoller {

    private static final Logger log = LoggerFactory.getLogger(FifoPoller.class);
    private static final int CHUNK = 64 * 1024;
    /** Reads per turn of the loop while output is dropped, so a chatty process cannot hold the poll thread. */
    private static final int DROPPED_READS_PER_TURN = 4;

    private final PollLoop loop;
    // Touched only on the poll thread, by the read handlers.
    private final MemorySegment buffer = Arena.ofAuto().allocate(CHUNK);
    private final MemorySegment state = LinuxCalls.allocateCallState(Arena.ofAuto());

    /** Reads on {@code loop}, which owns (and on close ends) every FIFO opened here. */
    public FifoPoller(PollLoop loop) {
        this.loop = loop;
    }

    /** The loop it reads on. */
    public PollLoop loop() {
        return loop;
    }

    /** A FIFO opened for reading: its content for one subscriber, and when reading it has ended. */
    public interface FifoStream {
        /**
         * The content as chunks; completes at end of file, when every writer has closed the FIFO, or once
         * {@link #discard() discarded}. Fails with {@link UnavailableException} when the loop stopped (the runtime
         * did) before that: the writers may still run, and the end of their output is unknown.
         */
        Flux<byte[]> content();

        /**
         * Completes once the FIFO is closed on our side (end of file, discard or the loop closing) or its subscriber
         * cancelled (the rest is dropped): nobody waits for more of it.
         */
        Mono<Void> closed();

        /** Closes the FIFO now, whether or not anyone subscribed. */
        void discard();

        /** Whether {@link #content()} has a subscriber. */
        boolean subscribed();
    }

    /** Opens {@code fifo} for reading now, never blocking. */
    public FifoStream open(Path fifo) throws IOException {
        OwnedFd fd = OwnedFd.open(fifo, LinuxCalls.O_RDONLY | LinuxCalls.O_NONBLOCK | LinuxCalls.O_CLOEXEC);
        Reader reader = new Reader(fifo, fd);
        reader.registration = loop.register(fd, reader);
        Flux<byte[]> content = Flux.create(sink -> {
            if (!reader.subscribed.compareAndSet(false, true)) {
                // One reader per FIFO: a second subscriber would split the bytes between the two.
                sink.error(new FailedPreconditionException("the output of " + fifo + " has a subscriber already"));
                return;
            }
            reader.sink = sink;
            // Closed before anyone subscribed (discarded, or the loop stopped): nothing will come.
            if (reader.finished) {
                reader.end(sink);
                return;
            }
            sink.onRequest(n -> {
                reader.demand.getAndAccumulate(n, (current, more) -> current + more < 0 ? Long.MAX_VALUE
                        : current + more);
                loop.wake();
            });
            // Read on and dropped, never closed: the writer must neither die of SIGPIPE nor block on a full pipe.
            sink.onCancel(() -> {
                reader.dropping = true;
                reader.done.tryEmitEmpty();
                loop.wake();
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
                reader.discarded = true;
                reader.registration.close();
            }

            @Override
            public boolean subscribed() {
                return reader.subscribed.get();
            }
        };
    }

    /**
     * A FIFO's write end (a process's stdin), fed from a publisher without ever blocking a thread: opened read-write
     * and non-blocking, so its open waits for nobody and whoever opens the read end waits for no writer; a chunk is
     * written when {@code poll(2)} says there is room, and the next asked for only once it is all written, so a
     * process that does not read holds the publisher back. Blocking writes on the io scheduler once held one of its
     * threads per process that did not read, and a few such processes left no thread for any other operation.
     */
    public interface FifoInput {
        /**
         * Copies {@code source} in, subscribed on {@code io}; when it ends (what it gave all written) our end is
         * closed and then {@code onEnd} runs on {@code io}. A second source is ignored.
         */
        void copy(Publisher<byte[]> source, Scheduler io, Runnable onEnd);

        /** Stops copying, drops what was not written yet, and closes our end. Idempotent. */
        void close();
    }

    /** Opens {@code fifo} for writing now, never blocking; closed when {@link FifoInput#close} or the loop closes. */
    public FifoInput input(Path fifo) throws IOException {
        OwnedFd fd = OwnedFd.open(fifo, LinuxCalls.O_RDWR | LinuxCalls.O_NONBLOCK | LinuxCalls.O_CLOEXEC);
        Writer writer = new Writer(fifo, fd);
        writer.registration = loop.register(fd, writer);
        return writer;
    }

    /** One FIFO written from a publisher, one chunk at a time; its buffer and offset are the poll thread's. */
    private final class Writer extends ChunkByChunk implements PollLoop.Handler, FifoInput {
        private static final int WRITE_CHUNK = 16 * 1024;
        final Path fifo;
        final OwnedFd fd;
        private final MemorySegment writeBuffer = Arena.ofAuto().allocate(WRITE_CHUNK);
        private final MemorySegment writeState = LinuxCalls.allocateCallState(Arena.ofAuto());
        volatile PollLoop.Registration registration;
        private volatile boolean sourceEnded;
        private final AtomicBoolean closed = new AtomicBoolean();
        private Scheduler io;
        private Runnable onEnd;
        private boolean copying;

        Writer(Path fifo, OwnedFd fd) {
            super(loop);
            this.fifo = fifo;
            this.fd = fd;
        }

        @Override
        public void copy(Publisher<byte[]> source, Scheduler scheduler, Runnable whenEnded) {
            synchronized (this) {
                if (closed.get() || copying) {
                    return;
                }
                copying = true;
                io = scheduler;
                onEnd = whenEnded;
            }
            Flux.from(new GuardedStdin(source)).subscribeOn(scheduler).subscribe(this);
        }

        @Override
        public void close() {
            closed.set(true);
            pending = null;
            dispose();
            registration.close();
        }

        @Override
        protected void hookOnComplete() {
            sourceEnded();
        }

        @Override
        protected void hookOnError(Throwable error) {
            log.debug("stdin copy into {} ended: {}", fifo, error.toString());
            sourceEnded();
        }

        /** The source ended: our end closes once what it gave is written (by the poll thread, if it still writes). */
        private void sourceEnded() {
            sourceEnded = true;
            if (pending == null) {
                finish();
            }
        }

        @Override
        public boolean wanted() {
            return !closed.get() && pending != null;
        }

        @Override
        public short events() {
            return LinuxCalls.POLLOUT;
        }

        @Override
        public void ready(PollLoop.Registration self, short revents) {
            byte[] chunk = pending;
            if (chunk != null) {
                try {
                    while (offset < chunk.length) {
                        int length = Math.min(WRITE_CHUNK, chunk.length - offset);
                        MemorySegment.copy(chunk, offset, writeBuffer, ValueLayout.JAVA_BYTE, 0, length);
                        long n = fd.write(writeBuffer.asSlice(0, length), writeState);
                        if (n < 0) {
                            return;
                        }
                        offset += (int) n;
                    }
                } catch (IOException e) {
                    log.debug("stdin copy into {} ended: {}", fifo, e.toString());
                    sourceEnded = true;
                }
                offset = 0;
                pending = null;
                if (sourceEnded) {
                    finish();
                } else {
                    request(1);
                }
            }
        }

        /** All of it written: our end closes before whoever waits is told, as the blocking copy did. Once. */
        private void finish() {
            if (!closed.compareAndSet(false, true)) {
                return;
            }
            dispose();
            registration.close();
            Runnable ended;
            Scheduler scheduler;
            synchronized (this) {
                ended = onEnd;
                scheduler = io;
            }
            if (ended != null) {
                try {
                    scheduler.schedule(ended);
                } catch (RejectedExecutionException stopping) {
                    log.debug("the end of stdin {} is not reported: the runtime is stopping", fifo);
                }
            }
        }

        /** Closed by the loop (it stopped) or by us: nothing more is asked of the source. */
        @Override
        public void closed() {
            closed.set(true);
            pending = null;
            dispose();
        }

        @Override
        public String toString() {
            return "stdin " + fifo;
        }
    }

    /** One open FIFO, its subscriber, and what the poll thread does with them. */
    private final class Reader implements PollLoop.Handler {
        final Path fifo;
        final OwnedFd fd;
        final AtomicLong demand = new AtomicLong();
        final AtomicBoolean subscribed = new AtomicBoolean();
        final Sinks.Empty<Void> done = Sinks.empty();
        volatile PollLoop.Registration registration;
        volatile FluxSink<byte[]> sink;
        volatile boolean finished;
        volatile boolean dropping;
        volatile boolean discarded;
        // Closed by the loop stopping, neither at end of file nor discarded: the output did not end.
        volatile boolean stopped;
        boolean endOfFile;
        IOException failure;

        Reader(Path fifo, OwnedFd fd) {
            this.fifo = fifo;
            this.fd = fd;
        }

        @Override
        public boolean wanted() {
            return dropping || (demand.get() > 0 && sink != null);
        }

        /**
         * Reads while there is demand and data, or drops a few chunks after a cancel; at end of file (or a read
         * error) deregisters.
         */
        @Override
        public void ready(PollLoop.Registration self, short revents) {
            try {
                for (int dropped = 0; dropping ? dropped < DROPPED_READS_PER_TURN : demand.get() > 0; ) {
                    boolean drop = dropping;
                    long n = fd.read(buffer, state);
                    if (n < 0) {
                        return;
                    }
                    if (n == 0) {
                        endOfFile = true;
                        self.close();
                        return;
                    }
                    if (drop) {
                        dropped++;
                        continue;
                    }
                    demand.decrementAndGet();
                    sink.next(buffer.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE));
                }
            } catch (IOException e) {
                failure = e;
                self.close();
            }
        }

        /** Ends the subscriber; marked first, so a subscriber arriving later ends too. */
        @Override
        public void closed() {
            stopped = !endOfFile && !discarded && failure == null && loop.isClosing();
            finished = true;
            FluxSink<byte[]> subscriber = sink;
            if (subscriber != null) {
                end(subscriber);
            }
            done.tryEmitEmpty();
        }

        /**
         * The end {@code subscriber} gets: completion at end of file or on a discard, the read's error, or, when the
         * runtime stopped with the writers still there, {@link UnavailableException}: a completion then told a
         * container's reader that its process closed its output while it ran on.
         */
        void end(FluxSink<byte[]> subscriber) {
            if (failure != null) {
                subscriber.error(failure);
            } else if (stopped) {
                subscriber.error(new UnavailableException("output " + fifo + ": the runtime stopped before its"
                        + " writers closed it (they may run on)"));
            } else {
                subscriber.complete();
            }
        }

        @Override
        public String toString() {
            return fifo.toString();
        }
    }
}
