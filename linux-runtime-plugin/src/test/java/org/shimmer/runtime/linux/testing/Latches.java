package org.shimmer.runtime.linux.testing;

import java.util.concurrent.CountDownLatch;

/** Waits of test code that stands in for a host's subscriber. */
public final class Latches {

    private Latches() {}

    /**
     * Waits for {@code latch} through interrupts, as a subscriber that ignores them does, and leaves the interrupt
     * set once it returns.
     */
    public static void awaitUninterruptibly(CountDownLatch latch) {
        boolean interrupted = false;
        while (true) {
            try {
                latch.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
