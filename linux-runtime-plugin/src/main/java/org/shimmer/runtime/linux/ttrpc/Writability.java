package org.shimmer.runtime.linux.ttrpc;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import java.util.ArrayDeque;
import java.util.Queue;
import reactor.core.publisher.Mono;
import reactor.core.publisher.MonoSink;

/**
 * Tells a server connection's reader when the answers its peer has not read yet are back under Netty's low-water
 * mark, so that no more of its calls are read meanwhile: a peer that never reads cannot make the server hold more
 * answers than the calls it has in progress. All on the connection's event loop.
 */
final class Writability extends ChannelInboundHandlerAdapter {

    private final Queue<MonoSink<Void>> waiting = new ArrayDeque<>();

    /** Completes once the channel is writable: at once if it is. */
    Mono<Void> whenWritable(Channel channel) {
        return Mono.create(sink -> {
            if (channel.eventLoop().inEventLoop()) {
                waitOrComplete(channel, sink);
            } else {
                channel.eventLoop().execute(() -> waitOrComplete(channel, sink));
            }
        });
    }

    private void waitOrComplete(Channel channel, MonoSink<Void> sink) {
        if (channel.isWritable() || !channel.isActive()) {
            sink.success();
        } else {
            waiting.add(sink);
        }
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
        if (ctx.channel().isWritable()) {
            releaseAll();
        }
        ctx.fireChannelWritabilityChanged();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        releaseAll();
        ctx.fireChannelInactive();
    }

    private void releaseAll() {
        for (MonoSink<Void> sink; (sink = waiting.poll()) != null; ) {
            sink.success();
        }
    }
}
