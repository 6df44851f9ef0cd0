package org.shimmer.runtime.linux.poll;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.linux.sys.Bell;
import org.shimmer.runtime.linux.sys.OwnedFd;

class PollLoopTest {

    private PollLoop loop;

    @BeforeEach
    void setUp() throws IOException {
        loop = new PollLoop("poll-loop-test-poll");
    }

    @AfterEach
    void tearDown() {
        loop.close();
        assertThat(loop.isAlive()).as("poll thread alive after close").isFalse();
        assertThat(loop.registrations()).as("poll registrations left").isZero();
    }

    @Test
    void survivesAThousandRegistrationsFromManyThreadsWithoutLeakingADescriptor() throws Exception {
        // Loads what the cycles use (classes, jars) before counting descriptors.
        assertThat(OwnedFd.eventfd()).satisfies(OwnedFd::close);
        long before = openDescriptors();
        int cycles = 1000;
        CountDownLatch fired = new CountDownLatch(cycles / 2);
        CountDownLatch closed = new CountDownLatch(cycles);
        AtomicInteger closedTwice = new AtomicInteger();
        ExecutorService threads = Executors.newFixedThreadPool(4);
        try {
            List<Future<?>> work = new ArrayList<>();
            for (int i = 0; i < cycles; i++) {
                boolean ring = i % 2 == 0;
                work.add(threads.submit(() -> {
                    OwnedFd eventfd = OwnedFd.eventfd();
                    AtomicInteger closes = new AtomicInteger();
                    PollLoop.Registration registration = loop.register(eventfd, new PollLoop.Handler() {
                        @Override
                        public void ready(PollLoop.Registration self, short revents) {
                            fired.countDown();
                            // Deregistering from the handler itself: closes at once, on the poll thread.
                            self.close();
                        }

                        @Override
                        public void closed() {
                            if (closes.incrementAndGet() > 1) {
                                closedTwice.incrementAndGet();
                            }
                            closed.countDown();
                        }
                    });
                    if (ring) {
                        new Bell(eventfd).ring();
                    } else {
                        registration.close();
                    }
                    return null;
                }));
            }
            for (Future<?> future : work) {
                future.get(10, TimeUnit.SECONDS);
            }
        } finally {
            threads.shutdownNow();
        }

        assertThat(fired.await(10, TimeUnit.SECONDS)).as("every rung registration was dispatched").isTrue();
        assertThat(closed.await(10, TimeUnit.SECONDS)).as("every registration was closed").isTrue();
        assertThat(closedTwice).as("registrations closed twice").hasValue(0);
        assertThat(loop.registrations()).as("registrations left").isZero();
        assertThat(loop.isAlive()).as("the loop survives").isTrue();
        assertThat(openDescriptors()).as("descriptors open after the cycles").isEqualTo(before);
    }

    @Test
    void closeClosesWhatIsStillRegisteredAndRefusesMore() throws Exception {
        CountDownLatch closed = new CountDownLatch(3);
        List<OwnedFd> fds = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            OwnedFd eventfd = OwnedFd.eventfd();
            fds.add(eventfd);
            loop.register(eventfd, new PollLoop.Handler() {
                @Override
                public void ready(PollLoop.Registration self, short revents) {}

                @Override
                public void closed() {
                    closed.countDown();
                }
            });
        }

        loop.close();

        assertThat(closed.await(5, TimeUnit.SECONDS)).as("handlers told of the close").isTrue();
        assertThat(fds).allMatch(OwnedFd::isClosed);
        OwnedFd late = OwnedFd.eventfd();
        assertThatThrownBy(() -> loop.register(late, (self, revents) -> {}))
                .isInstanceOf(IOException.class).hasMessageContaining("closed");
        assertThat(late.isClosed()).as("a refused descriptor is closed").isTrue();
    }

    @Test
    void aFailingHandlerIsDeregisteredAndTheLoopGoesOn() throws Exception {
        OwnedFd failing = OwnedFd.eventfd();
        CountDownLatch failingClosed = new CountDownLatch(1);
        loop.register(failing, new PollLoop.Handler() {
            @Override
            public void ready(PollLoop.Registration self, short revents) {
                throw new IllegalStateException("handler bug");
            }

            @Override
            public void closed() {
                failingClosed.countDown();
            }
        });
        new Bell(failing).ring();
        OwnedFd healthy = OwnedFd.eventfd();
        CountDownLatch fired = new CountDownLatch(1);
        PollLoop.Registration registration = loop.register(healthy, (self, revents) -> fired.countDown());
        new Bell(healthy).ring();

        assertThat(fired.await(5, TimeUnit.SECONDS)).as("the loop still dispatches").isTrue();
        assertThat(failingClosed.await(5, TimeUnit.SECONDS)).as("the failing handler is deregistered").isTrue();
        assertThat(failing.isClosed()).as("the failing handler's descriptor is closed").isTrue();
        registration.close();
    }

    private static long openDescriptors() throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        }
    }
}
