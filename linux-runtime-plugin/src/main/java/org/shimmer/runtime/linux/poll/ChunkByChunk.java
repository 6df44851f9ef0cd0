package org.shimmer.runtime.linux.poll;

import org.reactivestreams.Subscription;
import reactor.core.publisher.BaseSubscriber;

/**
 * A source's subscriber that the poll thread writes out: it asks for one chunk, leaves it in {@link #pending} and
 * wakes the loop; the poll thread writes it when its descriptor has room and asks for the next once it is all
 * written. So a reader that does not read holds the source back, and no thread waits meanwhile.
 */
abstract class ChunkByChunk extends BaseSubscriber<byte[]> {

    private final PollLoop loop;
    /** The chunk being written, null between chunks. */
    volatile byte[] pending;
    /** Poll thread only: how much of {@link #pending} was written. */
    int offset;

    ChunkByChunk(PollLoop loop) {
        this.loop = loop;
    }

    @Override
    protected final void hookOnSubscribe(Subscription subscription) {
        request(1);
    }

    @Override
    protected final void hookOnNext(byte[] chunk) {
        if (chunk.length == 0) {
            request(1);
            return;
        }
        pending = chunk;
        loop.wake();
    }
}
