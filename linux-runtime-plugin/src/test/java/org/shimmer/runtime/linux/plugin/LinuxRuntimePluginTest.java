package org.shimmer.runtime.linux.plugin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Arrays;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.resources.RuntimeResources;

/** Issue 11: a runtime asked for before the plugin started, or after it stopped, is unavailable, typed. */
class LinuxRuntimePluginTest {

    @Test
    void resourcesOfAPluginNotStartedAreUnavailable() {
        assertThatThrownBy(LinuxRuntimePlugin::resources)
                .isInstanceOfSatisfying(UnavailableException.class, unavailable -> assertThat(unavailable.code())
                        .isEqualTo(ErrorCode.UNAVAILABLE))
                .hasMessageContaining("not started");
    }

    /**
     * Two stops at once (a host's close and its shutdown hook, each calling {@code stopPlugins()}): the second
     * returned at once while the first still waited for an io task, so a host that unloaded the plugin on its
     * return still had the plugin's threads running.
     */
    @Test
    void aSecondStopDuringTheFirstReturnsOnlyOnceEveryThreadEnded() throws Exception {
        LinuxRuntimePlugin plugin = new LinuxRuntimePlugin();
        plugin.start();
        RuntimeResources resources = LinuxRuntimePlugin.resources();
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicReference<Thread> ioThread = new AtomicReference<>();
        resources.io().schedule(() -> {
            ioThread.set(Thread.currentThread());
            running.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        running.await();
        Thread firstStop = Thread.ofPlatform().name("first-stop").start(plugin::stop);
        while (!resources.isClosed()) {
            Thread.sleep(1);
        }
        AtomicBoolean ioAliveAtSecondReturn = new AtomicBoolean();
        Thread secondStop = Thread.ofPlatform().name("second-stop").start(() -> {
            plugin.stop();
            ioAliveAtSecondReturn.set(ioThread.get().isAlive());
        });
        // The io task holds the first stop; it is let go once the second stop returned or waits inside the close.
        while (secondStop.isAlive() && !waitsInTheClose(secondStop)) {
            Thread.sleep(1);
        }
        release.countDown();
        secondStop.join();
        firstStop.join();

        assertThat(ioAliveAtSecondReturn).as("the io thread alive when the second stop returned").isFalse();
        assertThat(Thread.getAllStackTraces().keySet()).as("plugin threads once both stops returned")
                .noneMatch(thread -> thread.getName().startsWith(RuntimeResources.THREAD_PREFIX));
        assertThatThrownBy(LinuxRuntimePlugin::resources).isInstanceOf(UnavailableException.class);
    }

    private static boolean waitsInTheClose(Thread thread) {
        return thread.getState() != Thread.State.RUNNABLE && Arrays.stream(thread.getStackTrace())
                .anyMatch(frame -> frame.getClassName().equals(RuntimeResources.class.getName()));
    }
}
