package org.shimmer.runtime.linux.ttrpc;

import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.MessageLite;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The ttRPC wire frame: a 10-byte big-endian header — body length (uint32), stream id (uint32), message type
 * (uint8), flags (uint8) — then a body of at most {@value #MAX_BODY_LENGTH} bytes holding one protobuf message.
 */
public final class Frames {

    /** Bytes in a frame header. */
    public static final int HEADER_LENGTH = 10;

    /** The largest body either side accepts: 4 MiB, containerd/ttrpc's limit. */
    public static final int MAX_BODY_LENGTH = 4 << 20;

    /** Message type of a {@code ttrpc.Request}. */
    public static final int TYPE_REQUEST = 1;

    /** Message type of a {@code ttrpc.Response}. */
    public static final int TYPE_RESPONSE = 2;

    private Frames() {}

    /**
     * Encodes one frame into a new buffer the caller owns.
     *
     * @throws TtrpcMessageTooLargeException if the body is over the limit; nothing is allocated then
     */
    public static ByteBuf encode(ByteBufAllocator allocator, int streamId, int type, MessageLite body) {
        int length = body.getSerializedSize();
        if (length > MAX_BODY_LENGTH) {
            throw new TtrpcMessageTooLargeException("message length " + length
                    + " exceeds the maximum message size of " + MAX_BODY_LENGTH, length);
        }
        ByteBuf frame = allocator.ioBuffer(HEADER_LENGTH + length);
        try {
            frame.writeInt(length).writeInt(streamId).writeByte(type).writeByte(0);
            ByteBuffer target = frame.nioBuffer(frame.writerIndex(), length);
            CodedOutputStream output = CodedOutputStream.newInstance(target);
            body.writeTo(output);
            output.checkNoSpaceLeft();
            frame.writerIndex(frame.writerIndex() + length);
            return frame;
        } catch (IOException | RuntimeException e) {
            frame.release();
            if (e instanceof RuntimeException runtime) {
                throw runtime;
            }
            throw new TtrpcException("failed to encode a ttrpc frame", e);
        }
    }
}
