package org.shimmer.runtime.linux.testing;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import io.netty.util.ResourceLeakDetectorFactory;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.platform.launcher.LauncherSession;
import org.junit.platform.launcher.LauncherSessionListener;

/**
 * Paranoid Netty leak detection that fails tests. Installed for the whole test JVM before any test runs (a
 * launcher session listener, so before any buffer class is initialised); tests that use Netty add
 * {@code @ExtendWith(NettyLeakDetection.class)} and fail when a buffer they made was collected unreleased.
 */
public final class NettyLeakDetection implements LauncherSessionListener, AfterEachCallback {

    private static final List<String> LEAKS = new ArrayList<>();

    @Override
    public void launcherSessionOpened(LauncherSession session) {
        ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.PARANOID);
        ResourceLeakDetectorFactory.setResourceLeakDetectorFactory(new RecordingFactory());
    }

    @Override
    public void afterEach(ExtensionContext context) {
        List<String> leaks = collectLeaks();
        if (!leaks.isEmpty()) {
            throw new AssertionError(leaks.size() + " Netty buffer leak(s) detected:\n" + String.join("\n", leaks));
        }
    }

    /** Forces collection and detection, then returns and forgets what leaked so far. */
    public static List<String> collectLeaks() {
        for (int i = 0; i < 5; i++) {
            System.gc();
            // Detection runs when a new tracked buffer is made: make some.
            for (int j = 0; j < 10; j++) {
                ByteBuf probe = PooledByteBufAllocator.DEFAULT.directBuffer(1);
                probe.release();
                ByteBuf heap = UnpooledByteBufAllocator.DEFAULT.heapBuffer(1);
                heap.release();
            }
        }
        synchronized (LEAKS) {
            List<String> copy = List.copyOf(LEAKS);
            LEAKS.clear();
            return copy;
        }
    }

    private static final class RecordingFactory extends ResourceLeakDetectorFactory {
        // Netty deprecated this abstract method and the constructor it forwards to, yet still calls only it.
        @Override
        @SuppressWarnings("deprecation")
        public <T> ResourceLeakDetector<T> newResourceLeakDetector(
                Class<T> resource, int samplingInterval, long maxActive) {
            return new ResourceLeakDetector<>(resource, samplingInterval, maxActive) {
                @Override
                protected void reportTracedLeak(String resourceType, String records) {
                    record("LEAK " + resourceType + records);
                }

                @Override
                protected void reportUntracedLeak(String resourceType) {
                    record("LEAK " + resourceType + " (untraced)");
                }
            };
        }

        private static void record(String leak) {
            synchronized (LEAKS) {
                LEAKS.add(leak);
            }
        }
    }
}
