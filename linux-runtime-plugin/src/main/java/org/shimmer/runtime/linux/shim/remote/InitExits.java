package org.shimmer.runtime.linux.shim.remote;

import java.time.Instant;
import java.util.Collections;
import java.util.Map;
import java.util.Set;
import java.util.WeakHashMap;
import java.util.concurrent.ConcurrentHashMap;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.task.TaskEvent;

/**
 * Which exits of remote shims' inits went into which exchange, learnt as they go in, never from a subscription.
 * A session used to learn it from its own subscription to the exchange, called on the delivery threads (the output
 * threads, for a default exchange): with every one of them held by host subscribers, the cleanup after a shim that
 * died once its init had exited did not know the exit had gone out, and published a second one.
 *
 * <p>An init has one exit in an exchange: the shim's own, forwarded by the events server, or the one the cleanup
 * after its dead shim publishes in its stead, whichever goes in first. Each is decided here, at once for both, in
 * one step per task: the events server drops a shim's exit when the cleanup published one for that init into that
 * exchange (the dead shim's last Forward, read only after its cleanup ran), and the cleanup publishes none when the
 * shim's went in. Those the cleanups published are kept until a shim of the task attaches again or the task is
 * created again ({@link #created}: a new init, which may have the old one's pid, must have its exit forwarded): one
 * per dead shim of a task never run again.
 *
 * <p>One per exchange ({@link #of}), not one per runtime: a runtime's shims forward through the events server of
 * its state root, which may be another runtime's of this process (two extensions PF4J made over the plugin's
 * resources share the state root's default exchange, and the first to bind serves the socket). With one per
 * runtime, the second runtime's sessions were never told their inits' exits went in, and the cleanup after a shim
 * of theirs killed once its init had exited published a second exit into that exchange.
 */
final class InitExits {

    /** Weakly: nothing here holds an exchange but the sessions attached, which let go when they end. */
    private static final Map<EventExchange, InitExits> BY_EXCHANGE = Collections.synchronizedMap(new WeakHashMap<>());

    private record Task(String namespace, String id) {}

    /**
     * What is known of one task: its attached sessions, and the init pids whose exits its cleanups published, with
     * when they did.
     */
    private record Known(Set<ShimSession> sessions, Map<Integer, Instant> ended) {
        Known() {
            this(ConcurrentHashMap.newKeySet(), new ConcurrentHashMap<>());
        }

        boolean isEmpty() {
            return sessions.isEmpty() && ended.isEmpty();
        }
    }

    private final Map<Task, Known> tasks = new ConcurrentHashMap<>();

    private InitExits() {}

    /** What is known of the init exits that went into {@code exchange}, shared by every runtime of this process. */
    static InitExits of(EventExchange exchange) {
        return BY_EXCHANGE.computeIfAbsent(exchange, into -> new InitExits());
    }

    /**
     * {@code session}, attached to the shim of task {@code namespace/id}, is told of its init's exits; what dead
     * shims of the task left is forgotten.
     */
    void watch(String namespace, String id, ShimSession session) {
        tasks.compute(new Task(namespace, id), (task, known) -> {
            Known kept = known != null ? known : new Known();
            kept.ended().clear();
            kept.sessions().add(session);
            return kept;
        });
    }

    /** {@code session} no longer answers for the shim of task {@code namespace/id}. */
    void unwatch(String namespace, String id, ShimSession session) {
        tasks.computeIfPresent(new Task(namespace, id), (task, known) -> {
            known.sessions().remove(session);
            return known.isEmpty() ? null : known;
        });
    }

    /**
     * The events server is about to forward a shim's {@code exit} of task {@code namespace/…} into {@code exchange}:
     * false when it must not, because the cleanup after that shim published its init's exit there already. Else
     * the sessions of that exchange whose init it is learn that it went out. Never waits.
     */
    boolean forwarding(EventExchange exchange, String namespace, TaskEvent.TaskExit exit) {
        if (!exit.id().equals(exit.containerId())) {
            return true; // an exec's
        }
        boolean[] forward = {true};
        tasks.computeIfPresent(new Task(namespace, exit.containerId()), (task, known) -> {
            if (known.ended().containsKey(exit.pid())) {
                forward[0] = false;
            } else {
                known.sessions().forEach(session -> session.initExitWentInto(exchange, exit.pid()));
            }
            return known;
        });
        return forward[0];
    }

    /**
     * A shim's {@code /tasks/create} of task {@code namespace/id}, stamped {@code createdAt} by the shim, goes into
     * {@code exchange}: a new init, whose pid may be an old one's. What the cleanups after dead shims of the task
     * published before then no longer drops its exit, and the sessions of that exchange forget the exit they were
     * told of before then. Kept until an attach in this process, an old pid dropped the exit of a new init the task
     * got in another process on the state root. A create stamped before is no new init: the shim retries a Forward
     * refused once a second or more later, after the events that followed it, and keeps its stamp.
     */
    void created(EventExchange exchange, String namespace, String id, Instant createdAt) {
        tasks.computeIfPresent(new Task(namespace, id), (task, known) -> {
            known.ended().values().removeIf(published -> published.isBefore(createdAt));
            known.sessions().forEach(session -> session.initCreatedIn(exchange, createdAt));
            return known.isEmpty() ? null : known;
        });
    }

    /**
     * The exit of init {@code pid} of task {@code namespace/id} is being published into {@code exchange} by other
     * than its shim (a reconcile found it exited while nobody listened): the sessions of that exchange learn it.
     */
    void publishing(EventExchange exchange, String namespace, String id, int pid) {
        tasks.computeIfPresent(new Task(namespace, id), (task, known) -> {
            known.sessions().forEach(session -> session.initExitWentInto(exchange, pid));
            return known;
        });
    }

    /**
     * The cleanup after the dead shim of {@code session} (task {@code namespace/id}, publishing into
     * {@code exchange}) would publish the exit of init {@code pid}: true when it must, the shim's own having not
     * gone in; from then on the shim's is not forwarded into that exchange.
     */
    boolean endingDeadShim(ShimSession session, EventExchange exchange, String namespace, String id, int pid) {
        boolean[] publish = {false};
        tasks.compute(new Task(namespace, id), (task, known) -> {
            Known kept = known != null ? known : new Known();
            if (!session.initExitSeenIn(exchange, pid)) {
                publish[0] = true;
                kept.ended().put(pid, Instant.now());
                kept.sessions().forEach(other -> other.initExitWentInto(exchange, pid));
            }
            return kept.isEmpty() ? null : kept;
        });
        return publish[0];
    }
}
