package org.shimmer.runtime.events;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.reactivestreams.Subscription;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.InvalidIdentifierException;
import org.shimmer.runtime.events.task.TaskEvent;
import reactor.core.CoreSubscriber;
import reactor.core.Disposable;
import reactor.core.publisher.BaseSubscriber;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Sinks;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;
import reactor.test.StepVerifier;
import reactor.util.context.Context;

class InMemoryEventExchangeTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(10);

    private final Scheduler delivery = Schedulers.newBoundedElastic(8, 10_000, "test-delivery");
    private final InMemoryEventExchange exchange = new InMemoryEventExchange(delivery, Clock.systemUTC());

    @AfterEach
    void tearDown() {
        exchange.dispose();
        delivery.dispose();
    }

    @Test
    void deliversInPublishOrderAcrossTopics() {
        int count = 5_000;
        Flux<Integer> received = exchange.subscribe(EventFilter.all(), Backlog.of(count, OverflowPolicy.FAIL))
                .take(count)
                .map(envelope -> (Integer) envelope.event());

        StepVerifier.create(received.collectList())
                .then(() -> {
                    for (int i = 0; i < count; i++) {
                        exchange.publish("ns", "/topic/" + (i % 3), i).block(TIMEOUT);
                    }
                })
                .assertNext(events -> assertThat(events).isSorted().hasSize(count).doesNotHaveDuplicates())
                .verifyComplete();
    }

    @Test
    void concurrentPublishersKeepOrderPerTopic() throws InterruptedException {
        int publishers = 4;
        int perPublisher = 2_000;
        List<Envelope> received = Collections.synchronizedList(new ArrayList<>());
        CountDownLatch all = new CountDownLatch(publishers * perPublisher);
        Disposable subscription = exchange.subscribe(EventFilter.all(), Backlog.of(publishers * perPublisher,
                OverflowPolicy.FAIL)).subscribe(envelope -> {
                    received.add(envelope);
                    all.countDown();
                });

        List<Thread> threads = new ArrayList<>();
        for (int p = 0; p < publishers; p++) {
            String topic = "/publisher/p" + p;
            threads.add(Thread.ofPlatform().start(() -> {
                for (int i = 0; i < perPublisher; i++) {
                    exchange.publish("ns", topic, i).block(TIMEOUT);
                }
            }));
        }
        for (Thread thread : threads) {
            thread.join(TIMEOUT.toMillis());
        }

        assertThat(all.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        subscription.dispose();
        Map<String, List<Integer>> byTopic = new HashMap<>();
        synchronized (received) {
            for (Envelope envelope : received) {
                byTopic.computeIfAbsent(envelope.topic(), t -> new ArrayList<>()).add((Integer) envelope.event());
            }
        }
        assertThat(byTopic).hasSize(publishers);
        byTopic.values().forEach(events -> assertThat(events).hasSize(perPublisher).isSorted());
    }

    @Test
    void filtersOnNamespaceAndTopicPrefix() {
        Flux<String> tasksInNs1 = exchange.subscribe(EventFilter.all().withNamespace("ns1").withTopicPrefix("/tasks/"))
                .map(envelope -> envelope.namespace() + envelope.topic() + "=" + envelope.event())
                .take(2);

        StepVerifier.create(tasksInNs1)
                .then(() -> {
                    exchange.publish("ns2", "/tasks/start", "a").block(TIMEOUT);
                    exchange.publish("ns1", "/containers/create", "b").block(TIMEOUT);
                    exchange.publish("ns1", "/tasks/start", "c").block(TIMEOUT);
                    exchange.publish("ns1", "/tasksx/start", "d").block(TIMEOUT);
                    exchange.publish("ns1", "/tasks/exit", "e").block(TIMEOUT);
                })
                .expectNext("ns1/tasks/start=c", "ns1/tasks/exit=e")
                .verifyComplete();
    }

    @Test
    void slowSubscriberBlocksNeitherPublishersNorOthers() throws InterruptedException {
        int count = 1_000;
        int capacity = 16;
        CountDownLatch slowHolding = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch slowSawLast = new CountDownLatch(1);
        List<Integer> slowReceived = Collections.synchronizedList(new ArrayList<>());
        Disposable slow = exchange.subscribe(EventFilter.all(), Backlog.of(capacity, OverflowPolicy.DROP_OLDEST))
                .subscribe(envelope -> {
                    int value = (Integer) envelope.event();
                    slowReceived.add(value);
                    if (value == count - 1) {
                        slowSawLast.countDown();
                    }
                    slowHolding.countDown();
                    awaitQuietly(release);
                });
        List<Integer> fastReceived = Collections.synchronizedList(new ArrayList<>());
        CountDownLatch fastDone = new CountDownLatch(count);
        Disposable fast = exchange.subscribe(EventFilter.all(), Backlog.of(count, OverflowPolicy.FAIL))
                .subscribe(envelope -> {
                    fastReceived.add((Integer) envelope.event());
                    fastDone.countDown();
                });

        exchange.publish("ns", "/t", 0).block(TIMEOUT);
        assertThat(slowHolding.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        // The slow subscriber is now stuck inside onNext; every further publish must still return.
        for (int i = 1; i < count; i++) {
            exchange.publish("ns", "/t", i).block(TIMEOUT);
        }
        assertThat(fastDone.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        assertThat(fastReceived).hasSize(count).isSorted();
        assertThat(slowReceived).containsExactly(0);

        release.countDown();
        assertThat(slowSawLast.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        // Held: the first event, the full backlog and one in the hand-off to the delivery thread.
        assertThat(slowReceived).isSorted().hasSizeLessThanOrEqualTo(capacity + 2).startsWith(0).endsWith(count - 1);
        slow.dispose();
        fast.dispose();
    }

    @Test
    void failPolicyEndsTheSlowSubscriptionWithAnOverflowError() {
        CountDownLatch release = new CountDownLatch(1);
        Flux<Envelope> stuck = exchange.subscribe(EventFilter.all(), Backlog.of(4, OverflowPolicy.FAIL))
                .doOnNext(envelope -> awaitQuietly(release));

        StepVerifier.create(stuck)
                .then(() -> {
                    for (int i = 0; i < 20; i++) {
                        exchange.publish("ns", "/t", i).block(TIMEOUT);
                    }
                    release.countDown();
                })
                .thenConsumeWhile(envelope -> true)
                .expectErrorSatisfies(error -> assertThat(error)
                        .isInstanceOfSatisfying(EventOverflowException.class, overflow -> assertThat(overflow.code())
                                .isEqualTo(ErrorCode.RESOURCE_EXHAUSTED))
                        .hasMessageContaining("more than 4 events behind"))
                .verify(TIMEOUT);
    }

    @Test
    void dropNewestKeepsTheEarliestEvents() throws InterruptedException {
        CountDownLatch holding = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch sawLate = new CountDownLatch(1);
        List<Integer> received = Collections.synchronizedList(new ArrayList<>());
        Disposable subscription = exchange.subscribe(EventFilter.all(), Backlog.of(4, OverflowPolicy.DROP_NEWEST))
                .subscribe(envelope -> {
                    received.add((Integer) envelope.event());
                    if (envelope.event().equals(1000)) {
                        sawLate.countDown();
                    }
                    holding.countDown();
                    awaitQuietly(release);
                });
        exchange.publish("ns", "/t", 0).block(TIMEOUT);
        assertThat(holding.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        for (int i = 1; i < 100; i++) {
            exchange.publish("ns", "/t", i).block(TIMEOUT);
        }
        release.countDown();
        // A late event gets in once the released subscriber has drained its backlog; until then it is the one
        // dropped, so offer it until it arrives.
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        do {
            exchange.publish("ns", "/t", 1000).block(TIMEOUT);
        } while (!sawLate.await(10, TimeUnit.MILLISECONDS) && System.nanoTime() < deadline);

        assertThat(sawLate.getCount()).isZero();
        subscription.dispose();
        assertThat(received).isSorted().startsWith(0, 1, 2, 3).doesNotContain(50, 99).endsWith(1000);
    }

    @Test
    void aContainersExitSurvivesABurstFromOtherContainers() {
        // Neither subscriber requests while 2000 events for other containers of the same namespace are published
        // around x's exit: the namespace-wide one loses x's exit to them, the one filtered to x cannot.
        Backlog backlog = Backlog.of(16, OverflowPolicy.DROP_OLDEST);
        EventFilter onlyX = EventFilter.container("ns", "x");
        Stalled x = new Stalled();
        Stalled namespace = new Stalled();
        exchange.subscribe(onlyX, backlog).subscribe(x);
        exchange.subscribe(EventFilter.all().withNamespace("ns"), backlog).subscribe(namespace);

        publishTask("ns", new TaskEvent.TaskStart("x", 10));
        publishOthers("ns", 1_000);
        publishTask("ns", new TaskEvent.TaskExit("x", "x", 10, 3, Instant.EPOCH));
        publishOthers("ns", 1_000);
        publishTask("other-ns", new TaskEvent.TaskExit("x", "x", 99, 9, Instant.EPOCH));

        assertThat(stats(onlyX).dropped()).isZero();
        assertThat(stats(EventFilter.all().withNamespace("ns")).dropped()).isPositive();
        assertThat(exchange.dropped()).isEqualTo(stats(EventFilter.all().withNamespace("ns")).dropped());

        x.request(Long.MAX_VALUE);
        namespace.request(Long.MAX_VALUE);
        TaskEvent.TaskExit exit = x.events().map(Envelope::event).ofType(TaskEvent.TaskExit.class).blockFirst(TIMEOUT);
        assertThat(exit.exitStatus()).isEqualTo(3);
        assertThat(x.events().take(2).map(Envelope::topic).collectList().block(TIMEOUT))
                .containsExactly("/tasks/start", "/tasks/exit");
        // The namespace-wide subscriber holds one envelope in hand-off plus a full backlog of the latest others.
        List<Envelope> seenByNamespace = namespace.events().take(17).collectList().block(TIMEOUT);
        assertThat(seenByNamespace).noneMatch(envelope -> envelope.event() instanceof TaskEvent.TaskExit e
                && e.containerId().equals("x"));
        x.dispose();
        namespace.dispose();
        assertThat(exchange.subscriptions()).isEmpty();
    }

    @Test
    void eachSubscriptionCountsItsOwnDropsAndTheTotalOutlivesThem() {
        Flux<Envelope> events = exchange.subscribe(EventFilter.all(), Backlog.of(4, OverflowPolicy.DROP_NEWEST));
        Stalled early = new Stalled();
        Stalled late = new Stalled();
        events.subscribe(early);
        for (int i = 0; i < 10; i++) {
            exchange.publish("ns", "/t", i).block(TIMEOUT);
        }
        events.subscribe(late);
        for (int i = 10; i < 13; i++) {
            exchange.publish("ns", "/t", i).block(TIMEOUT);
        }

        // Each holds one envelope in hand-off and four in its backlog; the rest is dropped and counted.
        assertThat(exchange.subscriptions()).extracting(SubscriptionStats::dropped).containsExactly(8L, 0L);
        assertThat(exchange.dropped()).isEqualTo(8);
        early.request(Long.MAX_VALUE);
        assertThat(early.events().take(5).map(envelope -> (Integer) envelope.event()).collectList().block(TIMEOUT))
                .containsExactly(0, 1, 2, 3, 4);
        early.dispose();
        late.dispose();
        assertThat(exchange.subscriptions()).isEmpty();
        assertThat(exchange.dropped()).isEqualTo(8);
    }

    @Test
    void dropsAreLoggedOncePerIntervalNotOncePerDrop() {
        SettableClock clock = new SettableClock(Instant.parse("2026-01-01T00:00:00Z"));
        InMemoryEventExchange timed = new InMemoryEventExchange(delivery, clock);
        Stalled stalled = new Stalled();
        timed.subscribe(EventFilter.all(), Backlog.of(1, OverflowPolicy.DROP_NEWEST)).subscribe(stalled);

        List<String> warnings = warningsWhile(() -> {
            // One envelope in hand-off, one in the backlog, 98 dropped.
            for (int i = 0; i < 100; i++) {
                timed.publish("ns", "/t", i).block(TIMEOUT);
            }
            clock.now = clock.now.plusSeconds(9);
            timed.publish("ns", "/t", 100).block(TIMEOUT);
            clock.now = clock.now.plusSeconds(1);
            timed.publish("ns", "/t", 101).block(TIMEOUT);
        });

        assertThat(warnings).hasSize(2);
        assertThat(warnings.get(0)).endsWith("events dropped so far: 1");
        assertThat(warnings.get(1)).endsWith("events dropped so far: 100");
        assertThat(timed.dropped()).isEqualTo(100);
        stalled.dispose();
        timed.dispose();
    }

    @Test
    void forwardKeepsTheEnvelopeTimestamp() {
        Instant then = Instant.parse("2020-01-01T00:00:00Z");

        StepVerifier.create(exchange.subscribe(EventFilter.all()).take(1))
                .then(() -> exchange.forward(new Envelope(then, "ns", "/tasks/exit", "x")).block(TIMEOUT))
                .assertNext(envelope -> assertThat(envelope.timestamp()).isEqualTo(then))
                .verifyComplete();
    }

    @Test
    void rejectsBadNamespaceAndTopicByName() {
        StepVerifier.create(exchange.publish("../x", "/tasks/exit", "e"))
                .expectErrorSatisfies(error -> assertThat(error)
                        .isInstanceOf(InvalidIdentifierException.class)
                        .hasMessageContaining("\"../x\""))
                .verify(TIMEOUT);
        StepVerifier.create(exchange.publish("ns", "tasks", "e"))
                .expectErrorSatisfies(error -> assertThat(error)
                        .isInstanceOf(InvalidIdentifierException.class)
                        .hasMessageContaining("invalid topic \"tasks\""))
                .verify(TIMEOUT);
    }

    @Test
    void cancelledSubscribersAreForgotten() {
        Disposable subscription = exchange.subscribe(EventFilter.all()).subscribe();
        assertThat(exchange.subscriptions()).hasSize(1);

        subscription.dispose();

        assertThat(exchange.subscriptions()).isEmpty();
    }

    @Test
    void disposeCompletesSubscribersAndRefusesPublishes() {
        StepVerifier.create(exchange.subscribe(EventFilter.all()))
                .then(exchange::dispose)
                .expectComplete()
                .verify(TIMEOUT);
        StepVerifier.create(exchange.publish("ns", "/t", "late"))
                .expectError(IllegalStateException.class)
                .verify(TIMEOUT);
        StepVerifier.create(exchange.subscribe(EventFilter.all())).expectComplete().verify(TIMEOUT);
    }

    @Test
    void boundedDemandIsHonouredAndTheRestWaitsInOrder() {
        Stalled stalled = new Stalled();
        exchange.subscribe(EventFilter.all(), Backlog.of(16, OverflowPolicy.FAIL)).subscribe(stalled);
        for (int i = 0; i < 5; i++) {
            exchange.publish("ns", "/t", i).block(TIMEOUT);
        }

        stalled.request(2);
        assertThat(stalled.events().take(2).map(envelope -> (Integer) envelope.event()).collectList().block(TIMEOUT))
                .containsExactly(0, 1);
        stalled.request(3);

        assertThat(stalled.events().take(5).map(envelope -> (Integer) envelope.event()).collectList().block(TIMEOUT))
                .containsExactly(0, 1, 2, 3, 4);
        assertThat(exchange.dropped()).isZero();
        stalled.dispose();
        assertThat(exchange.subscriptions()).isEmpty();
    }

    @Test
    void disposeDeliversWhatIsQueuedThenCompletes() {
        Flux<Integer> events = exchange.subscribe(EventFilter.all(), Backlog.of(16, OverflowPolicy.FAIL))
                .map(envelope -> (Integer) envelope.event());

        StepVerifier.create(events, 0)
                .then(() -> {
                    for (int i = 0; i < 3; i++) {
                        exchange.publish("ns", "/t", i).block(TIMEOUT);
                    }
                    exchange.dispose();
                })
                .thenRequest(3)
                .expectNext(0, 1, 2)
                .expectComplete()
                .verify(TIMEOUT);
        assertThat(exchange.subscriptions()).isEmpty();
    }

    @Test
    void aGoneDeliverySchedulerEndsTheSubscriptionWithItsError() {
        Scheduler gone = Schedulers.newSingle("gone-delivery");
        InMemoryEventExchange orphan = new InMemoryEventExchange(gone, Clock.systemUTC());

        StepVerifier.create(orphan.subscribe(EventFilter.all()))
                .then(() -> {
                    gone.dispose();
                    orphan.publish("ns", "/t", "lost").block(TIMEOUT);
                })
                .expectError(RejectedExecutionException.class)
                .verify(TIMEOUT);
        assertThat(orphan.subscriptions()).isEmpty();
        orphan.dispose();
    }

    @Test
    void aBadNameIsRejectedEveryTimeEvenBesideGoodOnes() {
        for (int i = 0; i < 2; i++) {
            exchange.publish("ns", "/tasks/exit", "ok").block(TIMEOUT);
            StepVerifier.create(exchange.publish("ns", "/tasks//exit", "e"))
                    .expectErrorSatisfies(error -> assertThat(error)
                            .isInstanceOf(InvalidIdentifierException.class)
                            .hasMessageContaining("\"/tasks//exit\""))
                    .verify(TIMEOUT);
            StepVerifier.create(exchange.publish("ns.", "/tasks/exit", "e"))
                    .expectError(InvalidIdentifierException.class)
                    .verify(TIMEOUT);
        }
    }

    @Test
    void aSubscriberThatThrowsEndsOnlyItsOwnSubscriptionAndItsErrorGoesToTheDroppedHook() {
        Throwing throwing = new Throwing();
        exchange.subscribe(EventFilter.all()).subscribe(throwing);

        StepVerifier.create(exchange.subscribe(EventFilter.all()).map(Envelope::event).take(3))
                .then(() -> {
                    for (int i = 0; i < 3; i++) {
                        exchange.publish("ns", "/t", i).block(TIMEOUT);
                    }
                })
                .expectNext(0, 1, 2)
                .expectComplete()
                .verify(TIMEOUT);
        // It stayed registered with its drain stuck: a full backlog and drop warnings for good.
        awaitNoSubscriptions(exchange);
        exchange.publish("ns", "/t", 3).block(TIMEOUT);

        assertThat(throwing.received).containsExactly(0);
        assertThat(throwing.dropped).singleElement().satisfies(error -> assertThat(error).hasMessage("boom 0"));
        assertThat(throwing.terminals).hasValue(0);
        assertThat(exchange.dropped()).isZero();
    }

    @Test
    void onASchedulerThatRunsDrainsInPlaceAThrowingSubscriberFailsNeitherThePublisherNorTheOthers() {
        InMemoryEventExchange inPlace = new InMemoryEventExchange(Schedulers.immediate(), Clock.systemUTC());
        Throwing throwing = new Throwing();
        inPlace.subscribe(EventFilter.all()).subscribe(throwing);
        List<Object> received = Collections.synchronizedList(new ArrayList<>());
        Disposable other = inPlace.subscribe(EventFilter.all()).subscribe(envelope -> received.add(envelope.event()));

        // The subscriber's exception came out of the publish, and the one subscribed after it missed the envelope.
        inPlace.publish("ns", "/t", 0).block(TIMEOUT);
        inPlace.publish("ns", "/t", 1).block(TIMEOUT);

        assertThat(received).containsExactly(0, 1);
        assertThat(throwing.received).containsExactly(0);
        assertThat(throwing.dropped).hasSize(1);
        assertThat(inPlace.subscriptions()).hasSize(1);
        other.dispose();
        inPlace.dispose();
        assertThat(inPlace.subscriptions()).isEmpty();
    }

    @Test
    void aDisposedExchangeWhoseSchedulerStoppedStillDeliversWhatIsQueuedAndCompletesLateSubscribers() {
        // As a runtime stops: its exchange is disposed, then its scheduler runs what it holds and takes nothing new.
        ExecutorService executor = Executors.newSingleThreadExecutor();
        InMemoryEventExchange stopped = new InMemoryEventExchange(Schedulers.fromExecutorService(executor),
                Clock.systemUTC());
        Flux<Object> events = stopped.subscribe(EventFilter.all(), Backlog.of(16, OverflowPolicy.FAIL))
                .map(Envelope::event);

        // Both ended with the scheduler's RejectedExecutionException: the queued envelopes were lost.
        StepVerifier.create(events, 0)
                .then(() -> {
                    for (int i = 0; i < 3; i++) {
                        stopped.publish("ns", "/t", i).block(TIMEOUT);
                    }
                    stopped.dispose();
                    executor.shutdown();
                    assertThat(awaitTermination(executor)).isTrue();
                })
                .thenRequest(1)
                .expectNext(0)
                .thenRequest(2)
                .expectNext(1, 2)
                .expectComplete()
                .verify(TIMEOUT);
        StepVerifier.create(stopped.subscribe(EventFilter.all())).expectComplete().verify(TIMEOUT);
        assertThat(stopped.subscriptions()).isEmpty();
    }

    private void publishTask(String namespace, TaskEvent event) {
        exchange.publish(namespace, event.topic(), event).block(TIMEOUT);
    }

    private void publishOthers(String namespace, int count) {
        for (int i = 0; i < count; i++) {
            publishTask(namespace, new TaskEvent.TaskExit("other-" + i, "other-" + i, 1000 + i, 0, Instant.EPOCH));
        }
    }

    private SubscriptionStats stats(EventFilter filter) {
        return exchange.subscriptions().stream().filter(stats -> stats.filter().equals(filter)).findFirst()
                .orElseThrow();
    }

    /** The exchange's drop warnings (slf4j-simple writes them to standard error) logged while {@code action} runs. */
    private static List<String> warningsWhile(Runnable action) {
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        PrintStream original = System.err;
        System.setErr(new PrintStream(captured, true, UTF_8));
        try {
            action.run();
        } finally {
            System.setErr(original);
        }
        return captured.toString(UTF_8).lines().filter(line -> line.contains("slow event subscriber")).toList();
    }

    /** A clock a test moves by hand. */
    private static final class SettableClock extends Clock {
        volatile Instant now;

        SettableClock(Instant now) {
            this.now = now;
        }

        @Override
        public Instant instant() {
            return now;
        }

        @Override
        public ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(ZoneId zone) {
            throw new UnsupportedOperationException();
        }
    }

    /** Requests nothing until told to, like a host busy elsewhere; replays what it received to whoever waits. */
    private static final class Stalled extends BaseSubscriber<Envelope> {
        private final Sinks.Many<Envelope> received = Sinks.many().replay().all();

        @Override
        protected void hookOnSubscribe(Subscription subscription) {}

        @Override
        protected void hookOnNext(Envelope envelope) {
            received.tryEmitNext(envelope);
        }

        Flux<Envelope> events() {
            return received.asFlux();
        }
    }

    /** Polls until {@code exchange} holds no subscription, at most {@link #TIMEOUT}. */
    private static void awaitNoSubscriptions(InMemoryEventExchange exchange) {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!exchange.subscriptions().isEmpty() && System.nanoTime() < deadline) {
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        assertThat(exchange.subscriptions()).isEmpty();
    }

    private static boolean awaitTermination(ExecutorService executor) {
        try {
            return executor.awaitTermination(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /**
     * A plain subscriber that breaks rule 2.13: its onNext throws. Errors dropped for it reach it through its
     * context, by Reactor's local onErrorDropped hook.
     */
    private static final class Throwing implements CoreSubscriber<Envelope> {
        final List<Object> received = Collections.synchronizedList(new ArrayList<>());
        final List<Throwable> dropped = Collections.synchronizedList(new ArrayList<>());
        final AtomicInteger terminals = new AtomicInteger();

        @Override
        public Context currentContext() {
            // Hooks.KEY_ON_ERROR_DROPPED, package-private in Reactor.
            return Context.of("reactor.onErrorDropped.local", (Consumer<Throwable>) dropped::add);
        }

        @Override
        public void onSubscribe(Subscription subscription) {
            subscription.request(Long.MAX_VALUE);
        }

        @Override
        public void onNext(Envelope envelope) {
            received.add(envelope.event());
            throw new IllegalStateException("boom " + envelope.event());
        }

        @Override
        public void onError(Throwable error) {
            terminals.incrementAndGet();
        }

        @Override
        public void onComplete() {
            terminals.incrementAndGet();
        }
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            latch.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
