package org.shimmer.runtime.linux.resources;

import io.netty.util.concurrent.FastThreadLocal;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.CountDownLatch;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.InMemoryEventExchange;
import org.shimmer.runtime.linux.poll.ExitMonitor;
import org.shimmer.runtime.linux.poll.FifoPoller;
import org.shimmer.runtime.linux.poll.PollLoop;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.Disposable;
import reactor.core.Disposables;
import reactor.core.publisher.Flux;
import reactor.core.scheduler.Scheduler;
import reactor.netty.resources.LoopResources;

/**
 * The lifetime of everything the runtime starts: the io scheduler, the output scheduler, the event loops, the one
 * poll thread (FIFOs and pidfds), the exit monitor, the default event exchange, and whatever is {@link #track tracked}
 * (subscriptions, the shim events servers). The plugin makes one on start and closes it on stop; tests make
 * their own. It holds no registry and no domain logic: those live in the runtime that runs on it.
 */
public final class RuntimeResources implements AutoCloseable {

    /** Every thread started here has a name with this prefix; the unload tests look for survivors by it. */
    public static final String THREAD_PREFIX = "shimmer-";

    /**
     * How long close waits for each part before it stops waiting. Work that may block for as long as a process
     * likes (a {@code runc create} running a slow hook) is {@link #cutByStop cut} instead of waited for.
     */
    public static final Duration STOP_TIMEOUT = Duration.ofSeconds(10);

    /**
     * How long a delete under way (a bundle's tree, an image layer, an import's scratch) goes on once close began,
     * before it stops between two entries and leaves the rest for a later delete. Time enough for the scratch of an
     * import the close stopped (it then leaves nothing), not for a tree of hundreds of thousands of files: such a
     * delete held the stop for {@link #STOP_TIMEOUT} and then ran on past the io scheduler's interrupt (no native
     * call heeds one), a thread of a stopped plugin still deleting.
     */
    public static final Duration DELETE_GRACE = Duration.ofSeconds(1);

    private static final Logger log = LoggerFactory.getLogger(RuntimeResources.class);

    private final IoScheduler ioScheduler;
    private final Scheduler io;
    private final OutputScheduler outputScheduler;
    private final Scheduler output;
    private final EventLoops loops;
    private PollLoop pollLoop;
    private FifoPoller poller;
    private final ConcurrentMap<Path, InMemoryEventExchange> exchanges = new ConcurrentHashMap<>();
    private final Disposable.Composite subscriptions = Disposables.composite();
    /** What {@link #cutByStop} was given and not yet run or withdrawn; each runs at most once. */
    private final Set<Runnable> cuts = ConcurrentHashMap.newKeySet();
    /** Whether close began to run {@link #cuts}: one given from then on runs at once. */
    private volatile boolean cutting;
    private final String prefix;
    private ExitMonitor exitMonitor;
    private boolean closed;
    /** {@link System#nanoTime()} when close began; read only once {@link #closing} is true. */
    private volatile long closeBegan;
    /** {@link #closed}, for {@link #closedFor}: asked before every entry of a delete, it takes no lock. */
    private volatile boolean closing;
    /** Counted down when the first {@link #close()} returns: a later one waits for it. */
    private final CountDownLatch closeEnded = new CountDownLatch(1);

    /** Starts the resources, naming every thread {@code <prefix>…}. */
    public RuntimeResources(String prefix) {
        this.prefix = prefix;
        int cores = Runtime.getRuntime().availableProcessors();
        this.ioScheduler = new IoScheduler(prefix + "io", Math.max(8, 4 * cores), 10_000, 30);
        this.io = ioScheduler.scheduler();
        // Twice the io bound: as many subscribers as there are io threads may block and leave as many threads for
        // the other streams. Idle threads end after 30 s.
        this.outputScheduler = new OutputScheduler(prefix + "output", Math.max(16, 8 * cores), 30);
        this.output = outputScheduler.scheduler();
        this.loops = new EventLoops(prefix + "ttrpc", Math.max(2, cores));
    }

    /** The bounded scheduler for blocking work: files and processes. */
    public Scheduler io() {
        return io;
    }

    /**
     * The bounded scheduler that calls the host's subscribers of container and exec output and of the default event
     * exchanges: a subscriber that blocks holds one of its threads, never an io thread. Once every one of its threads
     * is held, other streams' output and events wait for the first to free; the runtime's work does not. Closed
     * after the io scheduler, once no release can end a stream any more.
     */
    public Scheduler output() {
        return output;
    }

    /** The event loops for unix socket connections (ttRPC clients and servers). */
    public LoopResources loops() {
        return loops;
    }

    /** Reads every FIFO, on {@link #pollLoop()}. */
    public synchronized FifoPoller poller() {
        if (poller == null) {
            poller = new FifoPoller(pollLoop());
        }
        return poller;
    }

    /**
     * The one poll thread: FIFO readers and the exit monitor's pidfds; tests count its registrations. Started on
     * first use, so a command that runs nothing (a CLI's {@code ps}) starts no thread and links no poll call
     * (issue 13). Once {@link #close()} began: the closed loop if one was started, else {@link UnavailableException},
     * so no thread is started to outlive it.
     */
    public synchronized PollLoop pollLoop() {
        if (pollLoop == null) {
            if (closed) {
                throw new UnavailableException("the runtime is stopping; no poll thread is started");
            }
            try {
                pollLoop = new PollLoop(prefix + "poll");
            } catch (IOException e) {
                throw new UncheckedIOException("failed to start the poll thread", e);
            }
        }
        return pollLoop;
    }

    /**
     * The exchange of the state root {@code stateRoot} when the host gives none: one per state root, as its
     * containers are its own. With one for all, a runtime on another state root holding a container of the same
     * namespace and id had its exit reach this one's clients, which took it for theirs. It calls its subscribers
     * on {@link #output()}, as host subscribers of output are: called on the io threads, host subscribers blocked in
     * {@code onNext} held them all and the runtime's next run, exec, kill and release hung.
     */
    public synchronized InMemoryEventExchange exchange(Path stateRoot) {
        InMemoryEventExchange exchange = exchanges.computeIfAbsent(stateRoot.toAbsolutePath().normalize(),
                root -> new InMemoryEventExchange(output, Clock.systemUTC()));
        if (closed) {
            // One made after the stop is stopped as the others were: its streams end rather than wait for good.
            exchange.dispose();
        }
        return exchange;
    }


    /**
     * What watches process exits (container processes and shim daemons) on {@link #pollLoop()}, made on first
     * use; closed by {@link #close()}. It does not make the JVM a subreaper: {@link ExitMonitor#adoptOrphans()}
     * does.
     */
    public synchronized ExitMonitor exitMonitor() throws IOException {
        if (closed) {
            throw new IOException("the runtime is stopping");
        }
        if (exitMonitor == null) {
            exitMonitor = new ExitMonitor(pollLoop(), io::schedule);
        }
        return exitMonitor;
    }

    /** The prefix of every thread name. */
    public String threadPrefix() {
        return prefix;
    }


    /**
     * Ends {@code subscription} on {@link #close()} at the latest, before anything else closes. For every
     * subscription the runtime holds on a publisher it does not own (the host's event exchange), and for servers it
     * binds: one left behind would pin a plugin's class loader. And for connections it opens: the loops' own stop may
     * leave one open, its calls waiting for good.
     */
    public Disposable track(Disposable subscription) {
        subscriptions.add(subscription);
        return subscription;
    }

    /**
     * Runs {@code cut} when close begins to wait for the io scheduler's running tasks (it takes no new one by then),
     * or at once when that moment has passed, unless the returned handle was disposed first. For blocking io work
     * whose end the stop need not wait for and which {@code cut} ends: a {@code runc create} waiting on a slow hook
     * held the stop for its whole {@link #STOP_TIMEOUT} (a plugin stop during a create took about 10 s), and then
     * the interrupt ended it all the same. Work the end of {@code cut} sets off on the io scheduler (an undo) is
     * refused.
     */
    public Disposable cutByStop(Runnable cut) {
        Runnable once = cut::run; // its own identity: the same runnable given twice is two cuts
        cuts.add(once);
        if (cutting && cuts.remove(once)) {
            once.run();
        }
        return () -> cuts.remove(once);
    }

    /** Runs every cut given and not withdrawn; later ones run as they are given. */
    private void cutWorkInFlight() {
        cutting = true;
        for (Runnable cut : cuts) {
            if (cuts.remove(cut)) {
                try {
                    cut.run();
                } catch (RuntimeException failed) {
                    log.warn("work in flight could not be cut short by the stop", failed);
                }
            }
        }
    }

    /**
     * {@code events}, a subscription to {@code exchange}, ending with {@link UnavailableException} "{@code what}:
     * the runtime stopped" where the stop completed it, as it completes every subscriber of the exchanges it made: a
     * host subscribed across a plugin stop heard a completion (or this error, when the stop met the events server's
     * first bind). A host's own exchange outlives the stop, and its subscribers keep getting what the next runtime
     * publishes there: {@code events} is left as it is, so nothing of this runtime stays in their chain to pin a
     * plugin's class loader.
     */
    public <T> Flux<T> failedAtStop(Flux<T> events, EventExchange exchange, String what) {
        EventExchange own = exchange instanceof ExchangeInFront front ? front.behind() : exchange;
        if (!exchanges.containsValue(own)) {
            return events;
        }
        return events.concatWith(Flux.defer(() -> isClosed()
                ? Flux.error(new UnavailableException(what + ": the runtime stopped")) : Flux.empty()));
    }

    /** An exchange in front of another, whose subscriptions are that one's. */
    public interface ExchangeInFront {
        EventExchange behind();
    }

    /** Ends a subscription {@link #track tracked} earlier, and forgets it. */
    public void untrack(Disposable subscription) {
        subscriptions.remove(subscription);
        subscription.dispose();
    }

    /**
     * Whether {@link #close()} began: work it cut short (a connection it closed) tells its caller the runtime stopped,
     * not that the peer went away.
     */
    public synchronized boolean isClosed() {
        return closed;
    }

    /**
     * Whether {@link #close()} began at least {@code grace} ago. Long blocking work that no interrupt reaches asks
     * it between two steps and stops once it says so (deletes, with {@link #DELETE_GRACE}): counted from the start
     * of the close, so one stop gives all such work one grace, however much of it there is.
     */
    public boolean closedFor(Duration grace) {
        return closing && System.nanoTime() - closeBegan >= grace.toNanos();
    }

    /**
     * Ends everything started here. A later close waits for the first to end: two {@code stopPlugins()} at once
     * returned the second at once, while the first still waited for threads the host then unloaded the plugin
     * under. Called from one of this runtime's threads, which the first may be waiting for, it does not wait.
     */
    @Override
    public void close() {
        boolean first;
        ExitMonitor monitor;
        PollLoop startedLoop;
        synchronized (this) {
            first = !closed;
            if (first) {
                closeBegan = System.nanoTime();
                closing = true;
            }
            closed = true;
            monitor = exitMonitor;
            startedLoop = pollLoop;
        }
        if (!first) {
            awaitFirstClose();
            FastThreadLocal.removeAll();
            return;
        }
        try {
            endEverything(monitor, startedLoop);
        } finally {
            closeEnded.countDown();
        }
    }

    private void awaitFirstClose() {
        if (Thread.currentThread().getName().startsWith(prefix)) {
            return;
        }
        try {
            closeEnded.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void endEverything(ExitMonitor monitor, PollLoop startedLoop) {
        try {
            subscriptions.dispose();
        } catch (RuntimeException failed) {
            // Reactor disposes every one and then rethrows what failed; the rest of the stop must still run, or the
            // loops, the schedulers and the poll thread would outlive the plugin.
            log.warn("a tracked subscription failed to end", failed);
        }
        // Closing the monitor completes no watch (pending ones fail with UnavailableException): a shim or container
        // that outlives the runtime is not dead.
        if (monitor != null) {
            monitor.close();
        }
        exchanges.values().forEach(InMemoryEventExchange::dispose);
        // Closes every FIFO still open (their readers complete) and every pidfd still watched.
        if (startedLoop != null) {
            startedLoop.close();
        }
        // No quiet period: nothing may still be submitted once the runtime is stopping.
        if (!loops.close(STOP_TIMEOUT)) {
            log.warn("event loops did not stop within {}", STOP_TIMEOUT);
        }
        if (!ioScheduler.close(STOP_TIMEOUT, this::cutWorkInFlight)) {
            log.warn("io scheduler did not stop within {}; its remaining tasks were interrupted", STOP_TIMEOUT);
        }
        // Last: the poll loop's end and the io scheduler's releases end streams, and their subscribers hear of it here.
        if (!outputScheduler.close(STOP_TIMEOUT)) {
            log.warn("output subscribers did not return within {}; they were interrupted", STOP_TIMEOUT);
        }
        // Netty leaves per-thread state on whatever host thread ran runtime code; it would pin a plugin's loader.
        FastThreadLocal.removeAll();
    }
}
