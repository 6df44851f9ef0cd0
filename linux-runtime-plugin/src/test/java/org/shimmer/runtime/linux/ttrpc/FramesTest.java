package org.shimmer.runtime.linux.ttrpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import com.google.protobuf.BytesValue;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.shimmer.runtime.linux.shim.proto.ConnectRequest;
import org.shimmer.runtime.linux.shim.proto.ConnectResponse;
import org.shimmer.runtime.linux.testing.NettyLeakDetection;
import org.shimmer.runtime.linux.ttrpc.proto.KeyValue;
import org.shimmer.runtime.linux.ttrpc.proto.Request;
import org.shimmer.runtime.linux.ttrpc.proto.Response;

/** Framing and envelopes against the bytes observed between containerd and a real shim (shim-protocol.md §1.6). */
@ExtendWith(NettyLeakDetection.class)
class FramesTest {

    private static final HexFormat HEX = HexFormat.of();

    /** Connect{id:"e1"} as containerd's Go client sent it on stream 1, without deadline or metadata. */
    static final String CONNECT_REQUEST = "00000028" + "00000001" + "01" + "00"
            + "0a17" + hex("containerd.task.v2.Task") + "1207" + hex("Connect") + "1a04" + "0a02" + hex("e1");

    /** The shim's answer: ConnectResponse{shim_pid=13027} and no status. */
    static final String CONNECT_RESPONSE = "00000005" + "00000001" + "02" + "00" + "120308e365";

    /** The shim's error answer to State after Delete. */
    private static final String NOT_FOUND_BODY = "0a24" + "0805" + "1220" + hex("container not created: not found");

    private final EmbeddedChannel channel = new EmbeddedChannel(new FrameDecoder());

    @AfterEach
    void tearDown() {
        channel.finishAndReleaseAll();
    }

    @Test
    void encodesTheObservedConnectRequestExactly() {
        Request request = Request.newBuilder()
                .setService("containerd.task.v2.Task")
                .setMethod("Connect")
                .setPayload(ConnectRequest.newBuilder().setId("e1").build().toByteString())
                .build();

        ByteBuf frame = Frames.encode(ByteBufAllocator.DEFAULT, 1, Frames.TYPE_REQUEST, request);
        try {
            assertThat(ByteBufUtil.hexDump(frame)).isEqualTo(CONNECT_REQUEST);
        } finally {
            frame.release();
        }
    }

    @Test
    void decodesTheObservedConnectRequestAndResponse() throws Exception {
        channel.writeInbound(Unpooled.wrappedBuffer(HEX.parseHex(CONNECT_REQUEST + CONNECT_RESPONSE)));

        InboundFrame.RequestFrame request = channel.readInbound();
        assertThat(request.streamId()).isEqualTo(1);
        assertThat(request.request().getService()).isEqualTo("containerd.task.v2.Task");
        assertThat(request.request().getMethod()).isEqualTo("Connect");
        assertThat(ConnectRequest.parseFrom(request.request().getPayload()).getId()).isEqualTo("e1");

        InboundFrame.ResponseFrame response = channel.readInbound();
        assertThat(response.streamId()).isEqualTo(1);
        assertThat(response.response().hasStatus()).isFalse();
        assertThat(ConnectResponse.parseFrom(response.response().getPayload()).getShimPid()).isEqualTo(13027);
    }

    @Test
    void decodesTheObservedErrorStatus() throws Exception {
        Response response = Response.parseFrom(HEX.parseHex(NOT_FOUND_BODY));

        assertThat(response.getStatus().getCode()).isEqualTo(StatusCode.NOT_FOUND.value());
        assertThat(response.getStatus().getMessage()).isEqualTo("container not created: not found");
        assertThat(response.getPayload()).isEqualTo(ByteString.EMPTY);
    }

    @Test
    void encodesNamespaceMetadataAsContainerdDoes() {
        KeyValue namespace = KeyValue.newBuilder().setKey(CallOptions.NAMESPACE_KEY).setValue("rtest").build();
        Request request = Request.newBuilder().addMetadata(namespace).build();

        assertThat(HEX.formatHex(request.toByteArray()))
                .isEqualTo("2a23" + "0a1a" + hex("containerd-namespace-ttrpc") + "1205" + hex("rtest"));
    }

    @Test
    void anEmptyOkResponseIsAZeroByteBody() {
        ByteBuf frame = Frames.encode(ByteBufAllocator.DEFAULT, 7, Frames.TYPE_RESPONSE, Response.getDefaultInstance());
        try {
            assertThat(ByteBufUtil.hexDump(frame)).isEqualTo("00000000" + "00000007" + "02" + "00");
        } finally {
            frame.release();
        }
    }

    @Test
    void reassemblesFramesDeliveredOneByteAtATime() {
        byte[] bytes = HEX.parseHex(CONNECT_REQUEST + CONNECT_RESPONSE);
        for (byte b : bytes) {
            channel.writeInbound(Unpooled.wrappedBuffer(new byte[] {b}));
        }

        assertThat(channel.<Object>readInbound()).isInstanceOf(InboundFrame.RequestFrame.class);
        assertThat(channel.<Object>readInbound()).isInstanceOf(InboundFrame.ResponseFrame.class);
        assertThat(channel.<Object>readInbound()).isNull();
    }

    @Test
    void encodesTheObservedConnectRequestExactlyWithoutBuildingTheEnvelope() {
        ByteBuf frame = Frames.encodeRequest(ByteBufAllocator.DEFAULT, 1, "containerd.task.v2.Task", "Connect",
                ConnectRequest.newBuilder().setId("e1").build(), 0, Map.of());
        try {
            assertThat(ByteBufUtil.hexDump(frame)).isEqualTo(CONNECT_REQUEST);
        } finally {
            frame.release();
        }
    }

    @Test
    void aRequestEncodedDirectlyIsTheBuiltEnvelopeByteForByte() {
        Map<String, String> twoEntries = new LinkedHashMap<>();
        twoEntries.put(CallOptions.NAMESPACE_KEY, "rtest");
        twoEntries.put("x-empty", "");
        String multiByte = "\u00e9t\u00e9-\u65e5\u672c-\ud83d\ude00";
        record Case(String service, String method, ConnectRequest payload, long timeout,
                Map<String, String> metadata) {}
        List<Case> cases = List.of(
                new Case("containerd.task.v2.Task", "State", ConnectRequest.newBuilder().setId("c1").build(), 0,
                        Map.of()),
                new Case("s", "m", ConnectRequest.getDefaultInstance(), 0, Map.of()),
                new Case("", "", ConnectRequest.newBuilder().setId(multiByte).build(), -5, twoEntries),
                new Case("containerd.task.v2.Task", "Wait", ConnectRequest.newBuilder().setId("x".repeat(300)).build(),
                        Long.MAX_VALUE, Map.of(CallOptions.NAMESPACE_KEY, multiByte)));
        for (Case c : cases) {
            Request.Builder envelope = Request.newBuilder().setService(c.service()).setMethod(c.method())
                    .setPayload(c.payload().toByteString()).setTimeoutNano(c.timeout());
            c.metadata().forEach((key, value) ->
                    envelope.addMetadata(KeyValue.newBuilder().setKey(key).setValue(value)));
            ByteBuf built = Frames.encode(ByteBufAllocator.DEFAULT, 9, Frames.TYPE_REQUEST, envelope.build());
            ByteBuf direct = Frames.encodeRequest(ByteBufAllocator.DEFAULT, 9, c.service(), c.method(), c.payload(),
                    c.timeout(), c.metadata());
            try {
                assertThat(ByteBufUtil.hexDump(direct)).as("%s", c).isEqualTo(ByteBufUtil.hexDump(built));
            } finally {
                built.release();
                direct.release();
            }
        }
    }

    @Test
    void refusesToEncodeARequestOverTheLimitWithoutAllocating() {
        BytesValue huge = BytesValue.of(ByteString.copyFrom(new byte[Frames.MAX_BODY_LENGTH]));

        assertThatThrownBy(() -> Frames.encodeRequest(ByteBufAllocator.DEFAULT, 1, "s", "m", huge, 0, Map.of()))
                .isInstanceOf(TtrpcMessageTooLargeException.class)
                .hasMessageContaining("exceeds the maximum message size of 4194304");
    }

    @Test
    void refusesToEncodeABodyOverTheLimitWithoutAllocating() {
        Request huge = Request.newBuilder().setPayload(ByteString.copyFrom(new byte[Frames.MAX_BODY_LENGTH])).build();

        assertThatThrownBy(() -> Frames.encode(ByteBufAllocator.DEFAULT, 1, Frames.TYPE_REQUEST, huge))
                .isInstanceOf(TtrpcMessageTooLargeException.class)
                .hasMessageContaining("exceeds the maximum message size of 4194304");
    }

    @Test
    void discardsAnOversizedBodyAsItArrivesAndStaysInSync() {
        long declared = Frames.MAX_BODY_LENGTH + 1L;
        ByteBuf header = Unpooled.buffer().writeInt((int) declared).writeInt(3).writeByte(1).writeByte(0);
        channel.writeInbound(header);
        byte[] chunk = new byte[64 * 1024];
        long sent = 0;
        while (sent < declared) {
            int n = (int) Math.min(chunk.length, declared - sent);
            channel.writeInbound(Unpooled.wrappedBuffer(chunk, 0, n));
            sent += n;
        }
        channel.writeInbound(Unpooled.wrappedBuffer(HEX.parseHex(CONNECT_REQUEST)));

        InboundFrame.OversizedFrame oversized = channel.readInbound();
        assertThat(oversized).isEqualTo(new InboundFrame.OversizedFrame(3, Frames.TYPE_REQUEST, declared));
        assertThat(channel.<Object>readInbound()).isInstanceOf(InboundFrame.RequestFrame.class);
    }

    @Test
    void reportsGarbageBodiesAndUnknownTypesWithoutFailing() {
        byte[] garbage = {(byte) 0xff, (byte) 0xff, (byte) 0xff};
        ByteBuf frames = Unpooled.buffer()
                .writeInt(3).writeInt(5).writeByte(1).writeByte(0).writeBytes(garbage)
                .writeInt(0).writeInt(9).writeByte(3).writeByte(7);
        channel.writeInbound(frames);

        InboundFrame.MalformedFrame malformed = channel.readInbound();
        assertThat(malformed.streamId()).isEqualTo(5);
        assertThat(channel.<Object>readInbound()).isEqualTo(new InboundFrame.UnknownTypeFrame(9, 3));
    }

    @Test
    void survivesTenThousandRandomFrames() {
        Random random = new Random(2605);
        List<Object> decoded = new ArrayList<>();
        for (int i = 0; i < 10_000; i++) {
            int length = random.nextInt(64);
            byte[] body = new byte[length];
            random.nextBytes(body);
            ByteBuf frame = Unpooled.buffer()
                    .writeInt(length).writeInt(random.nextInt()).writeByte(random.nextInt(4)).writeByte(random.nextInt())
                    .writeBytes(body);
            channel.writeInbound(frame);
            for (Object message; (message = channel.readInbound()) != null; ) {
                decoded.add(message);
            }
        }

        assertThat(decoded).hasSize(10_000).allSatisfy(frame -> assertThat(frame).isInstanceOf(InboundFrame.class));
    }

    private static String hex(String ascii) {
        return HEX.formatHex(ascii.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
    }
}
