package org.shimmer.runtime.linux.ttrpc;

import org.shimmer.runtime.linux.ttrpc.proto.Request;
import org.shimmer.runtime.linux.ttrpc.proto.Response;

/**
 * What the {@link FrameDecoder} hands on: decoded envelopes, or a note of a frame it could not decode. No
 * variant holds a buffer, so nothing past the decoder has anything to release.
 */
sealed interface InboundFrame {

    /** The stream the frame was sent on. */
    int streamId();

    /** A request envelope. */
    record RequestFrame(int streamId, Request request) implements InboundFrame {}

    /** A response envelope. */
    record ResponseFrame(int streamId, Response response) implements InboundFrame {}

    /** A frame whose declared body was over the limit; its body was read and discarded. */
    record OversizedFrame(int streamId, int type, long length) implements InboundFrame {}

    /** A request or response frame whose body is not a valid envelope. */
    record MalformedFrame(int streamId, int type, String error) implements InboundFrame {}

    /** A frame of a type this version does not speak (e.g. ttRPC 1.2 streaming data); skipped. */
    record UnknownTypeFrame(int streamId, int type) implements InboundFrame {}
}
