package org.shimmer.containerd.task;

import java.util.concurrent.atomic.AtomicReference;
import org.shimmer.runtime.events.Backlog;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.EventFilter;
import org.shimmer.runtime.events.task.TaskEvent;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * The exchange a task's local shim publishes into: the daemon's own, except that the exit of the task's init is
 * preceded by its OOM kill if the memory cgroup counted one that was not reported yet.
 *
 * <p>The kernel signals an OOM before its killer has counted the kill, and counts it before the victim gets its
 * SIGKILL. So a count read at the signal can still be the old one, and a later read (the watch's rechecks) can
 * come after the task's delete under load, when nothing may be reported any more (a CI run lost
 * {@code /tasks/oom} this way); a read once the init has exited always sees the kill. containerd's CRI reads
 * OOMKilled from the OOM event it received before the exit, so it comes first here.
 */
final class OomBeforeExit implements EventExchange {

    private final EventExchange exchange;
    private final String taskId;
    private final AtomicReference<OomWatch> watch;

    OomBeforeExit(EventExchange exchange, String taskId, AtomicReference<OomWatch> watch) {
        this.exchange = exchange;
        this.taskId = taskId;
        this.watch = watch;
    }

    @Override
    public Mono<Void> publish(String namespace, String topic, Object event) {
        if (event instanceof TaskEvent.TaskExit exit && exit.id().equals(taskId)) {
            return Mono.defer(() -> {
                OomWatch current = watch.get();
                if (current != null) {
                    current.reportUnreported();
                }
                return exchange.publish(namespace, topic, event);
            });
        }
        return exchange.publish(namespace, topic, event);
    }

    @Override
    public Mono<Void> forward(Envelope envelope) {
        return exchange.forward(envelope);
    }

    @Override
    public Flux<Envelope> subscribe(EventFilter filter, Backlog backlog) {
        return exchange.subscribe(filter, backlog);
    }
}
