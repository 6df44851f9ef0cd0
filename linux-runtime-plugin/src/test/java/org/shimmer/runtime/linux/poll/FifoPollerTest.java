package org.shimmer.runtime.linux.poll;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.testing.LogCapture;
import reactor.core.Disposable;
import reactor.test.StepVerifier;

class FifoPollerTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(10);

    @TempDir
    Path temp;

    private PollLoop loop;
    private FifoPoller poller;

    @BeforeEach
    void setUp() throws Exception {
        loop = new PollLoop("fifo-test-poll");
        poller = new FifoPoller(loop);
    }

    @AfterEach
    void tearDown() {
        loop.close();
        assertThat(loop.registrations()).as("poll registrations left").isZero();
        assertThat(loop.isAlive()).as("poll thread alive").isFalse();
    }

    @Test
    void readsWhatTheWriterWritesAndEndsWhenItCloses() throws Exception {
        Path fifo = temp.resolve("out");
        LinuxCalls.mkfifo(fifo, 0600);
        // Opened before any writer: neither data nor end of file yet.
        FifoPoller.FifoStream stream = poller.open(fifo);

        CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
            try (OutputStream out = new FileOutputStream(fifo.toFile())) {
                out.write("hello ".getBytes(StandardCharsets.UTF_8));
                out.flush();
                out.write("world".getBytes(StandardCharsets.UTF_8));
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });

        StepVerifier.create(stream.content().map(bytes -> new String(bytes, StandardCharsets.UTF_8))
                        .reduce(String::concat))
                .expectNext("hello world")
                .verifyComplete();
        writer.get();
        StepVerifier.create(stream.closed()).verifyComplete();
        assertThat(loop.registrations()).as("registrations after end of file").isZero();
    }

    @Test
    void readsOnlyAsFastAsTheSubscriberAsks() throws Exception {
        Path fifo = temp.resolve("slow");
        LinuxCalls.mkfifo(fifo, 0600);
        FifoPoller.FifoStream stream = poller.open(fifo);
        byte[] megabyte = new byte[1 << 20];
        CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
            try (OutputStream out = new FileOutputStream(fifo.toFile())) {
                out.write(megabyte);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });

        StepVerifier.create(stream.content().map(bytes -> bytes.length), 1)
                .expectNextCount(1)
                .then(() -> assertThat(writer).as("a 1 MiB write cannot finish into a 64 KiB pipe").isNotDone())
                .thenRequest(Long.MAX_VALUE)
                .thenConsumeWhile(n -> true)
                .verifyComplete();
        writer.get();
    }

    @Test
    void discardClosesAStreamNobodySubscribed() throws Exception {
        Path fifo = temp.resolve("ignored");
        LinuxCalls.mkfifo(fifo, 0600);
        FifoPoller.FifoStream stream = poller.open(fifo);

        stream.discard();

        StepVerifier.create(stream.closed()).expectComplete().verify(TIMEOUT);
        StepVerifier.create(stream.content()).expectComplete().verify(TIMEOUT);
        assertThat(loop.registrations()).as("registrations after discard").isZero();
    }

    @Test
    void onlyOneSubscriberPerFifo() throws Exception {
        Path fifo = temp.resolve("one");
        LinuxCalls.mkfifo(fifo, 0600);
        FifoPoller.FifoStream stream = poller.open(fifo);
        stream.content().subscribe();

        StepVerifier.create(stream.content()).expectError(FailedPreconditionException.class).verify(TIMEOUT);
        stream.discard();
    }

    @Test
    void streamsEndedByACloseTouchNoDescriptorAfterwards() throws Exception {
        // Issue 9, finding 4: a stop logged "write fd N: Bad file descriptor" when streams were discarded after
        // the poll thread had closed its bell; had the number been reused, the write would have hit that file.
        Path subscribedFifo = temp.resolve("subscribed");
        Path ignoredFifo = temp.resolve("ignored");
        LinuxCalls.mkfifo(subscribedFifo, 0600);
        LinuxCalls.mkfifo(ignoredFifo, 0600);
        FifoPoller.FifoStream subscribed = poller.open(subscribedFifo);
        FifoPoller.FifoStream ignored = poller.open(ignoredFifo);
        Disposable reading = subscribed.content().subscribe();

        try (LogCapture log = LogCapture.start()) {
            loop.close();
            StepVerifier.create(subscribed.closed()).expectComplete().verify(TIMEOUT);
            StepVerifier.create(ignored.closed()).expectComplete().verify(TIMEOUT);
            reading.dispose();
            subscribed.discard();
            ignored.discard();
            // Closed by the stop, not at end of file: a late subscriber learns that much, not a normal end.
            StepVerifier.create(ignored.content()).expectError(UnavailableException.class).verify(TIMEOUT);
            assertThatThrownBy(() -> poller.open(ignoredFifo)).isInstanceOf(IOException.class)
                    .hasMessageContaining("closed");

            assertThat(log.text()).doesNotContain("Bad file descriptor").doesNotContain("could not wake");
        }
        assertThat(descriptorsOn(subscribedFifo) + descriptorsOn(ignoredFifo)).as("FIFO descriptors left").isZero();
    }

    private static long descriptorsOn(Path file) throws IOException {
        Path real = file.toRealPath();
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(fd -> {
                try {
                    return Files.readSymbolicLink(fd).equals(real);
                } catch (IOException gone) {
                    return false;
                }
            }).count();
        }
    }

    @Test
    void mkfifoNamesThePathAndTheReason() {
        assertThatThrownBy(() -> LinuxCalls.mkfifo(temp.resolve("missing/dir/fifo"), 0600))
                .isInstanceOf(LinuxCalls.ErrnoException.class)
                .hasMessageContaining("mkfifo " + temp.resolve("missing/dir/fifo"))
                .hasMessageContaining("No such file or directory");
    }
}
