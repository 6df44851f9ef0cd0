package org.shimmer.runtime.linux.testing;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import org.junit.jupiter.api.Test;

/** The leak harness itself can fail: a buffer dropped unreleased is reported. */
class NettyLeakDetectionTest {

    @Test
    void reportsABufferCollectedUnreleased() {
        NettyLeakDetection.collectLeaks();

        leakOne();

        assertThat(NettyLeakDetection.collectLeaks()).isNotEmpty().first().asString().startsWith("LEAK ");
    }

    private static void leakOne() {
        ByteBuf leaked = PooledByteBufAllocator.DEFAULT.directBuffer(64);
        leaked.writeLong(42);
    }
}
