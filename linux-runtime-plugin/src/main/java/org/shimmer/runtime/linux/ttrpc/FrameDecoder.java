package org.shimmer.runtime.linux.ttrpc;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import java.io.IOException;
import java.util.List;
import org.shimmer.runtime.linux.ttrpc.proto.Request;
import org.shimmer.runtime.linux.ttrpc.proto.Response;

/**
 * Splits the byte stream into frames and decodes each body into its envelope, on the event loop.
 *
 * <p>Invariants: at most {@link Frames#MAX_BODY_LENGTH} bytes of one body are ever buffered — a larger declared
 * length is skipped as it arrives, then reported as an {@link InboundFrame.OversizedFrame} so the stream can be
 * answered, and the connection stays in sync; each body is copied out of the cumulation buffer, which
 * {@link ByteToMessageDecoder} owns and releases, into an array its envelope may share, so no buffer leaves this
 * handler.
 */
final class FrameDecoder extends ByteToMessageDecoder {

    private long discardRemaining;
    private int discardStreamId;
    private int discardType;
    private long discardLength;

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        while (true) {
            if (discardRemaining > 0) {
                int skip = (int) Math.min(discardRemaining, in.readableBytes());
                in.skipBytes(skip);
                discardRemaining -= skip;
                if (discardRemaining > 0) {
                    return;
                }
                out.add(new InboundFrame.OversizedFrame(discardStreamId, discardType, discardLength));
            }
            if (in.readableBytes() < Frames.HEADER_LENGTH) {
                return;
            }
            int start = in.readerIndex();
            long length = in.getUnsignedInt(start);
            int streamId = in.getInt(start + 4);
            int type = in.getUnsignedByte(start + 8);
            if (length > Frames.MAX_BODY_LENGTH) {
                in.skipBytes(Frames.HEADER_LENGTH);
                discardRemaining = length;
                discardStreamId = streamId;
                discardType = type;
                discardLength = length;
                continue;
            }
            if (in.readableBytes() < Frames.HEADER_LENGTH + length) {
                return;
            }
            in.skipBytes(Frames.HEADER_LENGTH);
            ByteBuf body = in.readSlice((int) length);
            out.add(decodeBody(streamId, type, body));
        }
    }

    private static InboundFrame decodeBody(int streamId, int type, ByteBuf body) {
        try {
            return switch (type) {
                case Frames.TYPE_REQUEST -> new InboundFrame.RequestFrame(streamId, Request.parseFrom(input(body)));
                case Frames.TYPE_RESPONSE ->
                        new InboundFrame.ResponseFrame(streamId, Response.parseFrom(input(body)));
                default -> new InboundFrame.UnknownTypeFrame(streamId, type);
            };
        } catch (InvalidProtocolBufferException e) {
            return new InboundFrame.MalformedFrame(streamId, type, e.getMessage());
        } catch (IOException e) {
            return new InboundFrame.MalformedFrame(streamId, type, String.valueOf(e.getMessage()));
        }
    }

    /**
     * The body copied once into an array of its own, which the decoded envelope may then share: its payload is a
     * view of that array, not a second copy. (Decoding straight from the direct buffer copied it to an array
     * anyway, then copied the payload again.) The array is never written after this.
     */
    private static CodedInputStream input(ByteBuf body) {
        CodedInputStream input = CodedInputStream.newInstance(ByteBufUtil.getBytes(body));
        input.enableAliasing(true);
        return input;
    }
}
