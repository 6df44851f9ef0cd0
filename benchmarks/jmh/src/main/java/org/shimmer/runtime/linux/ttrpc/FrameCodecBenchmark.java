package org.shimmer.runtime.linux.ttrpc;

import com.google.protobuf.Timestamp;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.embedded.EmbeddedChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.shimmer.runtime.linux.shim.proto.StateRequest;
import org.shimmer.runtime.linux.shim.proto.StateResponse;
import org.shimmer.runtime.linux.shim.proto.Status;
import org.shimmer.runtime.linux.ttrpc.proto.KeyValue;
import org.shimmer.runtime.linux.ttrpc.proto.Request;
import org.shimmer.runtime.linux.ttrpc.proto.Response;

/**
 * The ttRPC frame codec on a client's typical frames: {@link Frames#encode} of a task {@code State} request and
 * {@link FrameDecoder} on the shim's {@code State} response, as the connection sees them. In this package because
 * the decoder is package-private; it changes nothing of it. Every buffer is released: each encoded frame right
 * after it is made, the decoded one at the end of the trial.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class FrameCodecBenchmark {

    private static final String ID = "bench-0123456789";

    /** What a channel allocates from unless told otherwise, as the connection's {@code channel.alloc()} does. */
    private final ByteBufAllocator allocator = ByteBufAllocator.DEFAULT;
    private final List<Object> decoded = new ArrayList<>(1);
    private Request request;
    private ByteBuf responseFrame;
    private FrameDecoder decoder;
    private EmbeddedChannel channel;
    private ChannelHandlerContext context;
    private int streamId = 1;

    @Setup(Level.Trial)
    public void frames() {
        request = Request.newBuilder()
                .setService("containerd.task.v2.Task")
                .setMethod("State")
                .setPayload(StateRequest.newBuilder().setId(ID).build().toByteString())
                .setTimeoutNano(TimeUnit.SECONDS.toNanos(30))
                .addMetadata(KeyValue.newBuilder().setKey("containerd-namespace").setValue("default"))
                .build();
        StateResponse state = StateResponse.newBuilder()
                .setId(ID)
                .setBundle("/var/lib/shimmer/bundles/default/" + ID)
                .setPid(123456)
                .setStatus(Status.RUNNING)
                .setStdout("/var/lib/shimmer/bundles/default/" + ID + "/stdout")
                .setStderr("/var/lib/shimmer/bundles/default/" + ID + "/stderr")
                .setExitedAt(Timestamp.newBuilder().setSeconds(-62135596800L))
                .build();
        Response response = Response.newBuilder().setPayload(state.toByteString()).build();
        responseFrame = Frames.encode(allocator, 1, Frames.TYPE_RESPONSE, response);
        decoder = new FrameDecoder();
        channel = new EmbeddedChannel(decoder);
        context = channel.pipeline().context(decoder);
    }

    @TearDown(Level.Trial)
    public void release() {
        responseFrame.release();
        channel.finishAndReleaseAll();
    }

    @Benchmark
    public int encodeStateRequest() {
        streamId += 2;
        ByteBuf frame = Frames.encode(allocator, streamId, Frames.TYPE_REQUEST, request);
        try {
            return frame.readableBytes();
        } finally {
            frame.release();
        }
    }

    @Benchmark
    public Object decodeStateResponse() {
        responseFrame.readerIndex(0);
        decoded.clear();
        decoder.decode(context, responseFrame, decoded);
        return decoded.getFirst();
    }
}
