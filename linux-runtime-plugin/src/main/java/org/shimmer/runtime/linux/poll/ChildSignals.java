package org.shimmer.runtime.linux.poll;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.shimmer.runtime.linux.sys.Bell;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * {@code SIGCHLD}, delivered as a ring of every subscribed {@link Bell}: how the exit monitor learns that an orphan
 * may wait to be reaped without scanning {@code /proc} on a timer (issue 10).
 *
 * <p>Invariants: the handler only rings bells (the JDK runs it on a fresh thread per signal; the work happens on the
 * poll thread). It is installed while at least one bell is subscribed and the handler found before it is put back
 * when the last one leaves, so an unloaded plugin leaves no handler of its class loader behind; if someone
 * installed another handler over ours meanwhile, theirs stays. Installing a handler does not change how the JDK
 * reaps its own children: it waits for each by pid, and a caught {@code SIGCHLD} (unlike an ignored one) keeps
 * their exit statuses.
 */
final class ChildSignals {

    private static final Logger log = LoggerFactory.getLogger(ChildSignals.class);
    private static final Signal CHLD = new Signal("CHLD");
    private static final Set<Bell> bells = ConcurrentHashMap.newKeySet();
    private static final SignalHandler HANDLER = signal -> bells.forEach(Bell::wake);
    private static SignalHandler previous;

    private ChildSignals() {}

    /** Rings {@code bell} on every {@code SIGCHLD} until {@link #unsubscribe}. */
    static synchronized void subscribe(Bell bell) {
        if (bells.isEmpty()) {
            prepareJdkProcesses();
            previous = Signal.handle(CHLD, HANDLER);
        }
        bells.add(bell);
    }

    /** Stops ringing {@code bell}; the last one out restores the previous handler. Idempotent. */
    static synchronized void unsubscribe(Bell bell) {
        if (!bells.remove(bell) || !bells.isEmpty()) {
            return;
        }
        SignalHandler current = Signal.handle(CHLD, previous);
        if (current != HANDLER) {
            Signal.handle(CHLD, current);
        }
        previous = null;
    }

    /**
     * The JDK resets {@code SIGCHLD} to the default action when its process class initialises, on the first
     * {@code ProcessBuilder.start()}: a handler installed before that silently vanished (measured on 25.0.3).
     * Initialise it first.
     */
    private static void prepareJdkProcesses() {
        try {
            Class.forName("java.lang.ProcessImpl", true, null);
        } catch (ClassNotFoundException | LinkageError e) {
            log.warn("cannot initialise the JDK's process class first; a SIGCHLD handler may be reset by it", e);
        }
    }
}
