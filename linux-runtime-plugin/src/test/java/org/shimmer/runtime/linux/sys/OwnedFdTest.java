package org.shimmer.runtime.linux.sys;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Issue 9, finding 4: a closed descriptor's number is never used again, even once the kernel reuses it. */
class OwnedFdTest {

    @TempDir
    Path temp;

    @Test
    void aClosedDescriptorIsRefusedAndTheReusedNumberIsNotWritten() throws Exception {
        Path mine = Files.writeString(temp.resolve("mine"), "");
        Path theirs = Files.writeString(temp.resolve("theirs"), "their data");
        OwnedFd fd = OwnedFd.open(mine, LinuxCalls.O_WRONLY | LinuxCalls.O_CLOEXEC);
        int number = fd.pollNumber();
        fd.close();
        fd.close();

        // Someone else's file now gets the lowest free number: ours, in a quiet JVM at the first try.
        List<Integer> opened = new ArrayList<>();
        try {
            int reused = -1;
            for (int i = 0; i < 64 && reused != number; i++) {
                reused = LinuxCalls.open(theirs, LinuxCalls.O_WRONLY | LinuxCalls.O_CLOEXEC);
                opened.add(reused);
            }
            assertThat(opened).as("the kernel handed the closed number out again").contains(number);

            try (Arena arena = Arena.ofConfined()) {
                MemorySegment bytes = arena.allocateFrom("overwritten", UTF_8);
                MemorySegment state = LinuxCalls.allocateCallState(arena);
                assertThatThrownBy(() -> fd.write(bytes.asSlice(0, 11), state))
                        .isInstanceOf(OwnedFd.ClosedException.class)
                        .hasMessageContaining(mine.toString());
                assertThatThrownBy(() -> fd.read(arena.allocate(8), state))
                        .isInstanceOf(OwnedFd.ClosedException.class);
                assertThatThrownBy(fd::pollNumber).isInstanceOf(OwnedFd.ClosedException.class);
            }
            assertThat(Files.readString(theirs)).isEqualTo("their data");
            assertThat(Files.readString(mine)).isEmpty();
            assertThat(Path.of("/proc/self/fd", Integer.toString(number)).toRealPath()).isEqualTo(theirs.toRealPath());
        } finally {
            opened.forEach(LinuxCalls::close);
        }
    }

    @Test
    void aCloseDuringAUseWaitsForItAndLaterUsesAreRefused() throws Exception {
        Path file = Files.writeString(temp.resolve("file"), "");
        OwnedFd fd = OwnedFd.open(file, LinuxCalls.O_WRONLY | LinuxCalls.O_CLOEXEC);
        int number = fd.pollNumber();
        CountDownLatch inUse = new CountDownLatch(1);
        CountDownLatch closed = new CountDownLatch(1);

        CompletableFuture<Long> use = CompletableFuture.supplyAsync(() -> {
            try {
                return fd.use(raw -> {
                    inUse.countDown();
                    try {
                        closed.await(10, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    // Still ours although close() was called meanwhile: the number cannot have been reused.
                    try (Arena arena = Arena.ofConfined()) {
                        return LinuxCalls.write(raw, arena.allocateFrom("in flight", UTF_8).asSlice(0, 9),
                                LinuxCalls.allocateCallState(arena));
                    }
                });
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        assertThat(inUse.await(10, TimeUnit.SECONDS)).isTrue();
        fd.close();
        assertThat(fd.isClosed()).isTrue();
        assertThat(Path.of("/proc/self/fd", Integer.toString(number))).as("open while the use runs").exists();
        assertThatThrownBy(() -> fd.use(raw -> raw)).isInstanceOf(OwnedFd.ClosedException.class);
        closed.countDown();

        assertThat(use.get(10, TimeUnit.SECONDS)).isEqualTo(9L);
        assertThat(Files.readString(file)).isEqualTo("in flight");
        assertThat(openDescriptorsOn(file)).as("closed by the last use").isZero();
    }

    @Test
    void aBellRungAfterCloseTouchesNothing() throws Exception {
        Bell bell = new Bell();
        int number = bell.pollNumber();
        bell.ring();
        bell.close();
        Path theirs = Files.writeString(temp.resolve("theirs"), "");
        int reused = LinuxCalls.open(theirs, LinuxCalls.O_WRONLY | LinuxCalls.O_CLOEXEC);
        try {
            assertThatThrownBy(bell::ring).isInstanceOf(OwnedFd.ClosedException.class);
            bell.wake();
            bell.close();

            assertThat(Files.size(theirs)).as("nothing written to fd " + reused + " (was " + number + ")").isZero();
        } finally {
            LinuxCalls.close(reused);
        }
    }

    private static long openDescriptorsOn(Path file) throws Exception {
        Path real = file.toRealPath();
        long count = 0;
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            for (Path fd : fds.toList()) {
                try {
                    if (Files.readSymbolicLink(fd).equals(real)) {
                        count++;
                    }
                } catch (IOException gone) {
                    // closed while listing
                }
            }
        }
        return count;
    }

    /**
     * A wait polls for what is left of its timeout rounded up to whole milliseconds, and not at all once the
     * deadline passed. Truncated, the last partial millisecond read as 0 ms left: a busy loop of zero-timeout polls
     * until the deadline, which for a zero timeout was a whole millisecond of spinning.
     */
    @Test
    void aWaitPollsForWhatIsLeftRoundedUpAndNotPastItsDeadline() {
        long deadline = 5_000_000_000L;
        assertThat(OwnedFd.millisLeft(deadline, deadline - 1)).as("1 ns left").isEqualTo(1);
        assertThat(OwnedFd.millisLeft(deadline, deadline - 999_999)).as("just under 1 ms left").isEqualTo(1);
        assertThat(OwnedFd.millisLeft(deadline, deadline - 1_000_000)).as("1 ms left").isEqualTo(1);
        assertThat(OwnedFd.millisLeft(deadline, deadline - 1_000_001)).as("just over 1 ms left").isEqualTo(2);
        assertThat(OwnedFd.millisLeft(deadline, deadline)).as("at the deadline").isEqualTo(-1);
        assertThat(OwnedFd.millisLeft(deadline, deadline + 1)).as("past it").isEqualTo(-1);
    }

    @Test
    void aPidfdBecomesReadableWhenItsProcessExitsAndNotBefore() throws Exception {
        Process lasting = new ProcessBuilder("sleep", "60").start();
        // It exits when its stdin closes, not after a delay: on a loaded machine a delay ran out before
        // pidfd_open, and the JDK had reaped it (ESRCH).
        Process brief = new ProcessBuilder("sh", "-c", "read line; exit 5").start();
        try (OwnedFd lastingFd = OwnedFd.pidfd((int) lasting.pid());
                OwnedFd briefFd = OwnedFd.pidfd((int) brief.pid())) {

            assertThat(lastingFd.awaitReadable(Duration.ofMillis(100))).as("still running").isFalse();
            // A zero or negative timeout looks once: a negative one reached poll as "forever" (review).
            assertThat(CompletableFuture.supplyAsync(() -> {
                try {
                    return lastingFd.awaitReadable(Duration.ofSeconds(-1)) || lastingFd.awaitReadable(Duration.ZERO);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            }).get(10, TimeUnit.SECONDS)).as("a look with no time to wait").isFalse();
            assertThat(briefFd.awaitReadable(Duration.ofMillis(100))).as("not exited yet").isFalse();
            brief.getOutputStream().close();
            assertThat(briefFd.awaitReadable(Duration.ofSeconds(10))).as("exited").isTrue();
            // Waiting through the pidfd takes nothing from the JDK: its Process still has the exit code.
            assertThat(brief.waitFor()).isEqualTo(5);
        } finally {
            lasting.destroyForcibly().waitFor();
        }
    }
}
