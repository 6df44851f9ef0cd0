package org.shimmer.runtime.linux.ttrpc;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.shimmer.runtime.linux.ttrpc.proto.Request;
import org.shimmer.runtime.linux.ttrpc.proto.Response;

/** A test peer, client or server, that writes whatever bytes it is told to and reads raw frames: no Netty, no rules. */
final class RawPeer implements AutoCloseable {

    record RawFrame(int streamId, int type, byte[] body) {
        Response response() throws IOException {
            return Response.parseFrom(body);
        }
    }

    private final SocketChannel channel;

    private RawPeer(SocketChannel channel) {
        this.channel = channel;
    }

    static RawPeer connect(Path socket) throws IOException {
        SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        channel.connect(UnixDomainSocketAddress.of(socket));
        return new RawPeer(channel);
    }

    /** The server side of the next connection made to {@code listener}: to see what a client puts on the wire. */
    static RawPeer accept(ServerSocketChannel listener) throws IOException {
        return new RawPeer(listener.accept());
    }

    RawPeer send(byte[] bytes) throws IOException {
        ByteBuffer buffer = ByteBuffer.wrap(bytes);
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
        return this;
    }

    RawPeer sendFrame(int streamId, int type, byte[] body) throws IOException {
        ByteBuffer header = ByteBuffer.allocate(Frames.HEADER_LENGTH)
                .putInt(body.length).putInt(streamId).put((byte) type).put((byte) 0);
        send(header.array());
        return send(body);
    }

    RawPeer sendRequest(int streamId, Request request) throws IOException {
        return sendFrame(streamId, Frames.TYPE_REQUEST, request.toByteArray());
    }

    /** Reads one frame, or fails after the timeout (closing the channel). */
    RawFrame readFrame(Duration timeout) throws Exception {
        CompletableFuture<RawFrame> read = CompletableFuture.supplyAsync(() -> {
            try {
                ByteBuffer header = readFully(Frames.HEADER_LENGTH);
                int length = header.getInt();
                int streamId = header.getInt();
                int type = header.get() & 0xff;
                header.get();
                return new RawFrame(streamId, type, readFully(length).array());
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        try {
            return read.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            channel.close();
            throw e;
        }
    }

    /** Whether the server closed the connection (end of stream) within the timeout. */
    boolean closedByPeer(Duration timeout) throws Exception {
        CompletableFuture<Boolean> eof = CompletableFuture.supplyAsync(() -> {
            try {
                return channel.read(ByteBuffer.allocate(1)) < 0;
            } catch (IOException reset) {
                return true;
            }
        });
        try {
            return eof.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            channel.close();
            return false;
        }
    }

    private ByteBuffer readFully(int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer) < 0) {
                throw new IOException("end of stream after " + buffer.position() + " of " + length + " bytes");
            }
        }
        return buffer.flip();
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
