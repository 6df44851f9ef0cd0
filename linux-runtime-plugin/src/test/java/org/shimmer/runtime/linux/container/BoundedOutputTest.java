package org.shimmer.runtime.linux.container;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.FailedPreconditionException;
import reactor.core.publisher.Sinks;
import reactor.test.StepVerifier;

/** The buffer's rules, fed by a sink in place of a process's stream (pure logic; the real streams: ContainerTest). */
class BoundedOutputTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(5);

    private final Sinks.Many<byte[]> source = Sinks.many().unicast().onBackpressureError();
    private final BoundedOutput output = new BoundedOutput("stdout of container ns/id", 8);

    private static byte[] bytes(String text) {
        return text.getBytes(UTF_8);
    }

    @Test
    void aSubscriberThatKeepsUpGetsEveryByteInOrderWhateverTheBound() {
        output.connect(source.asFlux());
        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)))
                .then(() -> {
                    source.tryEmitNext(bytes("0123456789abcdef"));
                    source.tryEmitNext(bytes("ghijklmnopqrstuvwxyz"));
                    source.tryEmitComplete();
                })
                .expectNext("0123456789abcdef", "ghijklmnopqrstuvwxyz")
                .verifyComplete();
        assertThat(output.droppedBytes()).isZero();
    }

    @Test
    void unreadBytesBeyondTheBoundAreDroppedOldestFirstAndCounted() {
        output.connect(source.asFlux());
        source.tryEmitNext(bytes("aaaa"));
        source.tryEmitNext(bytes("bbbb"));
        source.tryEmitNext(bytes("ccccc"));
        source.tryEmitComplete();

        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)))
                .expectNext("bbb", "ccccc")
                .verifyComplete();
        assertThat(output.droppedBytes()).isEqualTo(5);
    }

    @Test
    void aSubscriberThatStopsRequestingHoldsAtMostTheBound() {
        output.connect(source.asFlux());
        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)), 1)
                .then(() -> source.tryEmitNext(bytes("first")))
                .expectNext("first")
                .then(() -> {
                    for (int i = 0; i < 100; i++) {
                        source.tryEmitNext(bytes("x" + (i % 10)));
                    }
                })
                .thenRequest(Long.MAX_VALUE)
                .expectNext("x6", "x7", "x8", "x9")
                .then(source::tryEmitComplete)
                .verifyComplete();
        assertThat(output.droppedBytes()).isEqualTo(192);
    }

    @Test
    void aSecondSubscriberIsRefusedWhileTheFirstIsThereAndWelcomeAfterItCancelled() {
        output.connect(source.asFlux());
        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)))
                .then(() -> source.tryEmitNext(bytes("one")))
                .expectNext("one")
                .then(() -> StepVerifier.create(output.flux())
                        .expectErrorSatisfies(error -> assertThat(error)
                                .isInstanceOf(FailedPreconditionException.class)
                                .hasMessageContaining("stdout of container ns/id already has a subscriber"))
                        .verify(TIMEOUT))
                .thenCancel()
                .verify(TIMEOUT);

        source.tryEmitNext(bytes("two"));
        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)).take(1))
                .expectNext("two")
                .verifyComplete();
        source.tryEmitNext(bytes("three"));
        source.tryEmitComplete();
        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)))
                .expectNext("three")
                .verifyComplete();
        StepVerifier.create(output.flux()).verifyComplete();
    }

    @Test
    void theSourcesErrorComesAfterTheBufferedBytesToEverySubscriber() {
        output.connect(source.asFlux());
        source.tryEmitNext(bytes("last"));
        source.tryEmitError(new IllegalStateException("read failed"));
        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)))
                .expectNext("last")
                .verifyErrorMessage("read failed");
        StepVerifier.create(output.flux()).verifyErrorMessage("read failed");
    }

    @Test
    void aDisconnectedStreamEndsAfterWhatWasBuffered() {
        output.connect(source.asFlux());
        source.tryEmitNext(bytes("kept"));
        output.disconnect();
        assertThat(source.currentSubscriberCount()).isZero();
        StepVerifier.create(output.flux().map(chunk -> new String(chunk, UTF_8)))
                .expectNext("kept")
                .verifyComplete();
    }
}
