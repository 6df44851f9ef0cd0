package org.shimmer.runtime.linux.poll;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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
 * The master side of a process's pseudo-terminal on the runtime's one {@link PollLoop}: what the terminal prints,
 * for one subscriber, and what is typed into it, from one publisher. It exists before the master does (an exec's
 * output is handed out before it starts) and polls once the master is {@linkplain #attach attached}.
 *
 * <p>Invariants: output is read only while its subscriber has demand, so a subscriber that stops leaves the bytes
 * in the terminal and, once its buffer is full, the process blocks writing; input is asked for one chunk at a time,
 * the next only once the terminal took the last, so a process that does not read holds the publisher back instead
 * of our heap filling. The output ends when a read says {@code EIO} (Linux's end of file on a master: every slave
 * holder closed) or 0; the master itself stays open after that, for a resize, until {@link #close()}, and is
 * owned by its registration: closed exactly once, by the poll thread, on close or when the loop stops. A
 * subscriber that cancels does not end the terminal: what the process prints is then read and dropped, so it never
 * blocks on a terminal nobody reads.
 */
public final class PtyMaster {

    private static final Logger log = LoggerFactory.getLogger(PtyMaster.class);
    private static final int CHUNK = 16 * 1024;
    /** Reads per turn of the loop while output is dropped, so a chatty process cannot hold the poll thread. */
    private static final int DROPPED_READS_PER_TURN = 4;

    private final PollLoop loop;
    private final String name;
    // Touched only on the poll thread.
    private final MemorySegment buffer = Arena.ofAuto().allocate(CHUNK);
    private final MemorySegment state = LinuxCalls.allocateCallState(Arena.ofAuto());
    private final AtomicLong demand = new AtomicLong();
    private final AtomicBoolean subscribed = new AtomicBoolean();
    /** Whether the subscriber was ended; see {@link #finish}. */
    private final AtomicBoolean finished = new AtomicBoolean();
    private final AtomicBoolean ended = new AtomicBoolean();
    /** How the output ended, for a subscriber that comes after: null for end of file; set before {@link #ended}. */
    private volatile Throwable endedWith;
    private final Sinks.Empty<Void> outputEnded = Sinks.empty();
    private final Flux<byte[]> output;
    private final Handler handler = new Handler();
    /** Ends the output of a terminal whose master never arrived when the loop stops (an exec not started). */
    private final Runnable stoppedBeforeAttached = () -> end(stopped());
    private volatile FluxSink<byte[]> sink;
    private volatile boolean dropping;
    private volatile OwnedFd master;
    private volatile Input input;
    private PollLoop.Registration registration;
    private boolean closed;

    /** A terminal named {@code name} in errors, to be read and written on {@code loop}. */
    public PtyMaster(PollLoop loop, String name) {
        this.loop = loop;
        this.name = name;
        this.output = Flux.create(this::subscribe, FluxSink.OverflowStrategy.ERROR);
        loop.onStop(stoppedBeforeAttached);
    }

    private void subscribe(FluxSink<byte[]> subscriber) {
        if (!subscribed.compareAndSet(false, true)) {
            // One reader per terminal: a second would split the bytes between the two.
            subscriber.error(new FailedPreconditionException("the terminal output of " + name
                    + " has a subscriber already"));
            return;
        }
        sink = subscriber;
        if (ended.get()) {
            finish(subscriber, endedWith);
            return;
        }
        subscriber.onRequest(n -> {
            demand.getAndAccumulate(n, (current, more) -> current + more < 0 ? Long.MAX_VALUE : current + more);
            loop.wake();
        });
        subscriber.onCancel(() -> {
            dropping = true;
            outputEnded.tryEmitEmpty();
            loop.wake();
        });
    }

    /** Everything the terminal prints, for one subscriber; completes when every slave holder closed it. */
    public Flux<byte[]> output() {
        return output;
    }

    /** Whether {@link #output()} has a subscriber. */
    public boolean subscribed() {
        return subscribed.get();
    }

    /** Completes when the output ended, its subscriber cancelled, or the terminal was closed. */
    public Mono<Void> outputEnded() {
        return outputEnded.asMono();
    }

    /**
     * Takes {@code fd}, the master, and starts polling it; it is closed (and this refused) when the terminal was
     * closed or the loop stopped meanwhile.
     */
    public void attach(OwnedFd fd) throws IOException {
        synchronized (this) {
            if (closed) {
                fd.close();
                throw new IOException("the terminal of " + name + " was closed before its master arrived");
            }
            master = fd;
            try {
                registration = loop.register(fd, handler);
                // From now on the registration's close tells of the stop.
                loop.forget(stoppedBeforeAttached);
            } catch (IOException e) {
                end(loop.isClosing() ? stopped() : e);
                throw e;
            }
        }
    }

    /** Whether the master arrived. */
    public boolean attached() {
        return master != null;
    }

    /**
     * Sets the terminal's size ({@code TIOCSWINSZ}: its foreground group gets {@code SIGWINCH}); refused with
     * {@link FailedPreconditionException} before the master arrived or once it is closed.
     */
    public void resize(int columns, int rows) throws IOException {
        OwnedFd fd = master;
        if (fd == null) {
            throw new FailedPreconditionException("the terminal of " + name + " does not exist yet");
        }
        try {
            fd.use(number -> {
                LinuxCalls.setWindowSize(number, columns, rows);
                return null;
            });
        } catch (OwnedFd.ClosedException e) {
            throw new FailedPreconditionException("the terminal of " + name + " is closed", e);
        }
    }

    /**
     * Types what {@code source} publishes into the terminal, subscribed and asked on {@code io}; {@code onEnd} runs
     * when it ends. A second source is ignored.
     */
    public void type(Publisher<byte[]> source, Scheduler io, Runnable onEnd) {
        Input typing = new Input(onEnd);
        synchronized (this) {
            if (closed || input != null) {
                return;
            }
            input = typing;
        }
        Flux.from(new GuardedStdin(source)).subscribeOn(io).publishOn(io, 16).subscribe(typing);
    }

    /** Stops typing: the source is cancelled and what it gave that was not typed yet is dropped. */
    public void stopTyping() {
        Input typing = input;
        if (typing != null) {
            typing.pending = null;
            typing.dispose();
        }
    }

    /** Closes the terminal: typing stops, the output ends, and the master is closed by the poll thread. */
    public void close() {
        PollLoop.Registration attached;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            attached = registration;
        }
        loop.forget(stoppedBeforeAttached);
        stopTyping();
        if (attached != null) {
            attached.close();
        } else {
            end(null);
        }
    }

    /** The output ended ({@code failure} null for end of file); only the first call counts. */
    private void end(Throwable failure) {
        synchronized (this) {
            if (ended.get()) {
                return;
            }
            endedWith = failure;
            ended.set(true);
        }
        stopTyping();
        FluxSink<byte[]> subscriber = sink;
        if (subscriber != null) {
            finish(subscriber, failure);
        }
        outputEnded.tryEmitEmpty();
    }

    private UnavailableException stopped() {
        return new UnavailableException("the terminal of " + name
                + ": the runtime stopped before its process closed it (it may run on)");
    }

    /**
     * Ends the subscriber once: a subscribe and an end at the same moment each see the other's write (the sink set,
     * the end marked) and both finish it, and a second error goes to Reactor's dropped-error hook, logged at ERROR.
     */
    private void finish(FluxSink<byte[]> subscriber, Throwable failure) {
        if (!finished.compareAndSet(false, true)) {
            return;
        }
        if (failure == null) {
            subscriber.complete();
        } else {
            subscriber.error(failure);
        }
    }

    private boolean reading() {
        return !ended.get() && (dropping || (sink != null && demand.get() > 0));
    }

    private boolean writing() {
        Input typing = input;
        return !ended.get() && typing != null && typing.pending != null;
    }

    /** The poll thread's side. */
    private final class Handler implements PollLoop.Handler {

        @Override
        public boolean wanted() {
            return reading() || writing();
        }

        @Override
        public short events() {
            return (short) ((reading() ? LinuxCalls.POLLIN : 0) | (writing() ? LinuxCalls.POLLOUT : 0));
        }

        @Override
        public void ready(PollLoop.Registration self, short revents) {
            if (reading()) {
                read();
            }
            if (writing()) {
                write(revents);
            }
        }

        private void read() {
            try {
                for (int dropped = 0; !ended.get() && dropped < DROPPED_READS_PER_TURN; ) {
                    boolean drop = dropping;
                    if (!drop && demand.get() <= 0) {
                        return;
                    }
                    long n = master.read(buffer, state);
                    if (n < 0) {
                        return;
                    }
                    if (n == 0) {
                        end(null);
                        return;
                    }
                    if (drop) {
                        dropped++;
                        continue;
                    }
                    demand.decrementAndGet();
                    sink.next(buffer.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE));
                }
            } catch (LinuxCalls.ErrnoException e) {
                end(e.errno() == LinuxCalls.EIO ? null : e);
            } catch (IOException e) {
                end(e);
            }
        }

        private void write(short revents) {
            Input typing = input;
            // Read once: stopTyping (closeIo, close, a release on another thread) may clear it after writing()
            // saw it, and a null here would end the terminal as if the process had hung it up.
            byte[] chunk = typing != null ? typing.pending : null;
            if (chunk == null) {
                return;
            }
            try {
                while (typing.offset < chunk.length) {
                    int length = Math.min(CHUNK, chunk.length - typing.offset);
                    MemorySegment.copy(chunk, typing.offset, buffer, ValueLayout.JAVA_BYTE, 0, length);
                    long n = master.write(buffer.asSlice(0, length), state);
                    if (n < 0) {
                        if ((revents & (LinuxCalls.POLLHUP | LinuxCalls.POLLERR)) != 0) {
                            // Full and hung up: nobody will ever read it; asking again would spin.
                            stopTyping();
                        }
                        return;
                    }
                    typing.offset += (int) n;
                }
                typing.offset = 0;
                typing.pending = null;
                typing.request(1);
            } catch (IOException e) {
                log.debug("typing into the terminal of {} ended: {}", name, e.toString());
                stopTyping();
            }
        }

        /**
         * Closed by {@link #close()}, or by the loop's stop: then, unless the output had ended, the process may run
         * on (the hang-up of its terminal ends a shell, not a process that ignores it), and its reader learns that
         * the runtime stopped, as a FIFO's does, not that the output ended.
         */
        @Override
        public void closed() {
            boolean ours;
            synchronized (PtyMaster.this) {
                ours = closed;
            }
            end(!ours && loop.isClosing() ? stopped() : null);
        }

        @Override
        public String toString() {
            return "terminal of " + name;
        }
    }

    /** The typing source's subscriber: one chunk at a time, each written out before the next is asked for. */
    private final class Input extends ChunkByChunk {
        private final Runnable onEnd;

        Input(Runnable onEnd) {
            super(loop);
            this.onEnd = onEnd;
        }

        @Override
        protected void hookOnComplete() {
            onEnd.run();
        }

        @Override
        protected void hookOnError(Throwable error) {
            log.debug("typing into the terminal of {} ended: {}", name, error.toString());
            onEnd.run();
        }
    }
}
