package org.shimmer.runtime.linux.ttrpc;

import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.MessageLite;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.io.IOException;
import java.util.Map;

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
     * Encodes a request frame whose body is the {@code ttrpc.Request} envelope of {@code payload}, written
     * straight into the buffer: the same bytes as building the envelope and {@link #encode encoding} it, without
     * the envelope object, its metadata entries or the payload's copy into a {@code ByteString}. Fields in
     * number order and proto3 defaults (empty strings, zero timeout) left out, as the generated code does.
     *
     * @throws TtrpcMessageTooLargeException if the body is over the limit; nothing is allocated then
     */
    public static ByteBuf encodeRequest(ByteBufAllocator allocator, int streamId, String service, String method,
            MessageLite payload, long timeoutNanos, Map<String, String> metadata) {
        int payloadLength = payload.getSerializedSize();
        long length = (long) stringLength(1, service) + stringLength(2, method)
                + (payloadLength == 0 ? 0 : CodedOutputStream.computeUInt32Size(3, payloadLength) + payloadLength)
                + (timeoutNanos == 0 ? 0 : CodedOutputStream.computeInt64Size(4, timeoutNanos));
        for (Map.Entry<String, String> entry : metadata.entrySet()) {
            int entryLength = keyValueLength(entry);
            length += CodedOutputStream.computeUInt32Size(5, entryLength) + entryLength;
        }
        if (length > MAX_BODY_LENGTH) {
            throw new TtrpcMessageTooLargeException("message length " + length
                    + " exceeds the maximum message size of " + MAX_BODY_LENGTH, length);
        }
        return frame(allocator, (int) length, streamId, TYPE_REQUEST, output -> {
            writeString(output, 1, service);
            writeString(output, 2, method);
            if (payloadLength != 0) {
                output.writeUInt32NoTag(3 << 3 | 2);
                output.writeUInt32NoTag(payloadLength);
                payload.writeTo(output);
            }
            if (timeoutNanos != 0) {
                output.writeInt64(4, timeoutNanos);
            }
            for (Map.Entry<String, String> entry : metadata.entrySet()) {
                output.writeUInt32NoTag(5 << 3 | 2);
                output.writeUInt32NoTag(keyValueLength(entry));
                writeString(output, 1, entry.getKey());
                writeString(output, 2, entry.getValue());
            }
        });
    }

    /** Writes a body straight into a frame's buffer. */
    @FunctionalInterface
    private interface BodyWriter {
        void write(CodedOutputStream output) throws IOException;
    }

    /**
     * A frame of a {@code length}-byte body that {@code writer} fills exactly; the buffer is released if it
     * fails, so no path leaks it.
     */
    private static ByteBuf frame(ByteBufAllocator allocator, int length, int streamId, int type, BodyWriter writer) {
        ByteBuf frame = header(allocator, length, streamId, type);
        try {
            CodedOutputStream output = body(frame, length);
            writer.write(output);
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

    /**
     * A frame buffer holding the header, room for the body. On the heap: protobuf encodes strings straight into
     * an array, but into a direct buffer only through a new byte[] per string (it may not use Unsafe on this
     * JDK), plus two buffer duplicates per frame; Netty's one copy into a pooled direct buffer as the frame is
     * written costs less.
     */
    private static ByteBuf header(ByteBufAllocator allocator, int length, int streamId, int type) {
        return allocator.heapBuffer(HEADER_LENGTH + length)
                .writeInt(length).writeInt(streamId).writeByte(type).writeByte(0);
    }

    private static CodedOutputStream body(ByteBuf frame, int length) {
        return CodedOutputStream.newInstance(frame.array(), frame.arrayOffset() + frame.writerIndex(), length);
    }

    private static int keyValueLength(Map.Entry<String, String> entry) {
        return stringLength(1, entry.getKey()) + stringLength(2, entry.getValue());
    }

    private static int stringLength(int field, String value) {
        return value.isEmpty() ? 0 : CodedOutputStream.computeStringSize(field, value);
    }

    private static void writeString(CodedOutputStream output, int field, String value) throws IOException {
        if (!value.isEmpty()) {
            output.writeString(field, value);
        }
    }

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
        return frame(allocator, length, streamId, type, body::writeTo);
    }
}
