package org.shimmer.runtime.linux.ttrpc;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.StringValue;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.testing.NettyLeakDetection;
import org.shimmer.runtime.linux.ttrpc.proto.Request;
import org.shimmer.runtime.linux.ttrpc.proto.Response;
import org.shimmer.runtime.linux.ttrpc.proto.Status;
import reactor.core.publisher.Mono;
import reactor.netty.resources.LoopResources;
import reactor.test.StepVerifier;

/** Our client against a server that breaks the protocol: a raw socket writing whatever bytes it likes. */
@ExtendWith(NettyLeakDetection.class)
class TtrpcHostileServerTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(10);
    private static final String SERVICE = "shimmer.test.Echo";
    private static final int NOBODY = 65534;

    @TempDir
    Path temp;

    private LoopResources loops;
    private Path socket;
    private ServerSocketChannel listener;
    private Map<Integer, String> fdsBefore;
    private final AtomicInteger closeHooks = new AtomicInteger();

    @BeforeEach
    void setUp() throws Exception {
        loops = LoopResources.create("ttrpc-hostile", 1, 1, true);
        socket = temp.resolve("hostile.sock");
        listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        listener.bind(UnixDomainSocketAddress.of(socket));
        // After the JDK's first unix socket, which leaves one descriptor of its own open for good.
        fdsBefore = Leaks.openFds();
    }

    @AfterEach
    void tearDown() throws Exception {
        listener.close();
        Files.deleteIfExists(socket);
        loops.disposeLater(Duration.ZERO, TIMEOUT).block(TIMEOUT);
        assertThat(Leaks.fdsAddedSince(fdsBefore, Duration.ofSeconds(5))).as("descriptors left open").isEmpty();
    }

    private TtrpcConnection connect() {
        return TtrpcClient.create().socket(socket).runOn(loops).doOnClose(closeHooks::incrementAndGet).connect()
                .block(TIMEOUT);
    }

    private static Mono<String> echo(TtrpcConnection connection, String text) {
        return connection.call(SERVICE, "Echo", StringValue.of(text), StringValue.parser()).map(StringValue::getValue);
    }

    private static byte[] answer(String text) {
        return Response.newBuilder().setPayload(StringValue.of(text).toByteString()).build().toByteArray();
    }

    private static byte[] header(long length, int streamId, int type) {
        return ByteBuffer.allocate(Frames.HEADER_LENGTH).putInt((int) length).putInt(streamId).put((byte) type)
                .put((byte) 0).array();
    }

    /** Answers one echo correctly: the connection is still in step with its peer. */
    private static void stillInStep(TtrpcConnection connection, RawPeer peer) throws Exception {
        Mono<String> call = echo(connection, "in step").cache();
        call.subscribe(value -> {}, error -> {});
        RawPeer.RawFrame request = peer.readFrame(TIMEOUT);
        assertThat(Request.parseFrom(request.body()).getMethod()).isEqualTo("Echo");
        peer.sendFrame(request.streamId(), Frames.TYPE_RESPONSE, answer("in step"));
        assertThat(call.block(TIMEOUT)).isEqualTo("in step");
    }

    @Test
    void answersNobodyAskedForAndSecondAnswersAreDroppedAndTheCallGetsItsOwn() throws Exception {
        TtrpcConnection connection = connect();
        try (RawPeer peer = RawPeer.accept(listener)) {
            Mono<String> call = echo(connection, "mine").cache();
            call.subscribe(value -> {}, error -> {});
            RawPeer.RawFrame request = peer.readFrame(TIMEOUT);

            peer.sendFrame(request.streamId() + 2, Frames.TYPE_RESPONSE, answer("never asked"));
            peer.sendFrame(request.streamId() + 1, Frames.TYPE_RESPONSE, answer("even"));
            peer.sendFrame(0, Frames.TYPE_RESPONSE, answer("zero"));
            peer.sendFrame(request.streamId(), Frames.TYPE_REQUEST, request.body());
            peer.sendFrame(request.streamId(), 3, new byte[] {1, 2, 3});
            peer.sendFrame(request.streamId(), Frames.TYPE_RESPONSE, answer("mine"));
            peer.sendFrame(request.streamId(), Frames.TYPE_RESPONSE, answer("twice"));

            assertThat(call.block(TIMEOUT)).isEqualTo("mine");
            stillInStep(connection, peer);
            assertThat(connection.pendingCalls()).isZero();
        }
        StepVerifier.create(connection.onClose()).verifyComplete();
        assertThat(closeHooks).hasValue(1);
    }

    @Test
    void anOversizedOrGarbageAnswerFailsOnlyItsCallAndTheConnectionStaysInStep() throws Exception {
        TtrpcConnection connection = connect();
        try (RawPeer peer = RawPeer.accept(listener)) {
            Mono<String> big = echo(connection, "big").cache();
            big.subscribe(value -> {}, error -> {});
            RawPeer.RawFrame request = peer.readFrame(TIMEOUT);
            peer.send(header(Frames.MAX_BODY_LENGTH + 1L, request.streamId(), Frames.TYPE_RESPONSE));
            peer.send(new byte[Frames.MAX_BODY_LENGTH + 1]);
            StepVerifier.create(big).expectError(TtrpcMessageTooLargeException.class).verify(TIMEOUT);
            stillInStep(connection, peer);

            Mono<String> garbage = echo(connection, "garbage").cache();
            garbage.subscribe(value -> {}, error -> {});
            request = peer.readFrame(TIMEOUT);
            peer.sendFrame(request.streamId(), Frames.TYPE_RESPONSE, new byte[] {(byte) 0xff, (byte) 0xff});
            StepVerifier.create(garbage).expectErrorSatisfies(e -> assertThat(e).isExactlyInstanceOf(
                    TtrpcException.class).hasMessageContaining("undecodable response")).verify(TIMEOUT);

            Mono<String> badPayload = echo(connection, "bad payload").cache();
            badPayload.subscribe(value -> {}, error -> {});
            request = peer.readFrame(TIMEOUT);
            peer.sendFrame(request.streamId(), Frames.TYPE_RESPONSE, Response.newBuilder()
                    .setPayload(com.google.protobuf.ByteString.copyFrom(new byte[] {(byte) 0xff})).build()
                    .toByteArray());
            StepVerifier.create(badPayload).expectErrorSatisfies(e -> assertThat(e)
                    .hasMessageContaining("undecodable response payload")).verify(TIMEOUT);

            Mono<String> oddStatus = echo(connection, "odd status").cache();
            oddStatus.subscribe(value -> {}, error -> {});
            request = peer.readFrame(TIMEOUT);
            peer.sendFrame(request.streamId(), Frames.TYPE_RESPONSE, Response.newBuilder()
                    .setStatus(Status.newBuilder().setCode(-7).setMessage("odd")).build().toByteArray());
            StepVerifier.create(oddStatus).expectErrorSatisfies(e -> assertThat(((TtrpcStatusException) e).code())
                    .isEqualTo(StatusCode.UNKNOWN)).verify(TIMEOUT);

            stillInStep(connection, peer);
            assertThat(connection.pendingCalls()).isZero();
        }
        StepVerifier.create(connection.onClose()).verifyComplete();
    }

    @Test
    void anAnswerSplitByteByByteArrives() throws Exception {
        TtrpcConnection connection = connect();
        try (RawPeer peer = RawPeer.accept(listener)) {
            Mono<String> call = echo(connection, "slowly").cache();
            call.subscribe(value -> {}, error -> {});
            RawPeer.RawFrame request = peer.readFrame(TIMEOUT);
            byte[] body = answer("slowly");
            ByteBuffer frame = ByteBuffer.allocate(Frames.HEADER_LENGTH + body.length)
                    .put(header(body.length, request.streamId(), Frames.TYPE_RESPONSE)).put(body);
            for (byte b : frame.array()) {
                peer.send(new byte[] {b});
                Thread.sleep(1);
            }
            assertThat(call.block(TIMEOUT)).isEqualTo("slowly");
        }
        connection.disposeLater().block(TIMEOUT);
    }

    @Test
    void aPeerThatClosesMidFrameFailsEveryPendingCallOnce() throws Exception {
        TtrpcConnection connection = connect();
        try (RawPeer peer = RawPeer.accept(listener)) {
            Mono<String> first = echo(connection, "first").cache();
            Mono<String> second = echo(connection, "second").cache();
            first.subscribe(value -> {}, error -> {});
            second.subscribe(value -> {}, error -> {});
            RawPeer.RawFrame request = peer.readFrame(TIMEOUT);
            peer.readFrame(TIMEOUT);
            byte[] body = answer("first");
            peer.send(header(body.length, request.streamId(), Frames.TYPE_RESPONSE));
            peer.send(new byte[] {body[0], body[1]});
        }
        StepVerifier.create(connection.onClose()).verifyComplete();
        assertThat(connection.pendingCalls()).isZero();
        assertThat(closeHooks).hasValue(1);
    }

    @Test
    void aPeerThatDeclaresAHugeBodyAndNeverSendsItLetsATimedCallEndAndACancelFreeIt() throws Exception {
        TtrpcConnection connection = connect();
        try (RawPeer peer = RawPeer.accept(listener)) {
            reactor.core.Disposable unbounded = echo(connection, "unbounded").subscribe(value -> {}, error -> {});
            RawPeer.RawFrame request = peer.readFrame(TIMEOUT);
            peer.send(header(0xffff_fff0L, request.streamId(), Frames.TYPE_RESPONSE));
            peer.send(new byte[1 << 16]);
            StepVerifier.create(connection.call(SERVICE, "Echo", StringValue.of("timed"), StringValue.parser(),
                            CallOptions.defaults().withTimeout(Duration.ofMillis(300))))
                    .expectError(TtrpcTimeoutException.class)
                    .verify(TIMEOUT);
            assertThat(connection.pendingCalls()).isEqualTo(1);
            unbounded.dispose();
            assertThat(connection.pendingCalls()).isZero();
        }
        StepVerifier.create(connection.onClose()).verifyComplete();
    }

    @Test
    void aSocketPathThatIsNoListeningSocketFailsTheConnectNamingIt() throws Exception {
        Path regular = Files.writeString(temp.resolve("regular"), "not a socket");
        Path directory = Files.createDirectory(temp.resolve("directory"));
        Path dangling = Files.createSymbolicLink(temp.resolve("dangling"), temp.resolve("missing"));
        Path unserved = temp.resolve("unserved.sock");
        try (ServerSocketChannel gone = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            gone.bind(UnixDomainSocketAddress.of(unserved));
        }
        for (Path path : new Path[] {regular, directory, dangling, temp.resolve("missing"), unserved}) {
            StepVerifier.create(TtrpcClient.create().socket(path).runOn(loops).connect())
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(TtrpcClosedException.class)
                            .hasMessageContaining("failed to connect to ttrpc socket " + path))
                    .verify(TIMEOUT);
        }
        // Through a symbolic link to a live socket of our own user, as the kernel follows it.
        Path link = Files.createSymbolicLink(temp.resolve("link.sock"), socket);
        TtrpcConnection connection = TtrpcClient.create().socket(link).runOn(loops).connect().block(TIMEOUT);
        try (RawPeer peer = RawPeer.accept(listener)) {
            stillInStep(connection, peer);
        }
        StepVerifier.create(connection.onClose()).verifyComplete();
        Files.delete(unserved);
    }

    @Test
    void aServerOfAnotherUserIsRefusedBeforeAnythingIsSent() throws Exception {
        // A socket directory another user can write to, as a misconfigured one would be: that user's server, bound
        // in place of the shim's socket and open to everyone, must not be told our calls, nor answer them.
        Files.setPosixFilePermissions(temp, PosixFilePermissions.fromString("rwx--x--x"));
        Path foreign = Files.createDirectory(temp.resolve("foreign"));
        Files.setAttribute(foreign, "unix:uid", NOBODY);
        Files.setAttribute(foreign, "unix:gid", NOBODY);
        Path source = Files.writeString(foreign.resolve("Foreign.java"), """
                import java.net.*; import java.nio.*; import java.nio.channels.*; import java.nio.file.*;
                public class Foreign {
                    public static void main(String[] args) throws Exception {
                        try (ServerSocketChannel listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
                            listener.bind(UnixDomainSocketAddress.of(args[0]));
                            Files.setPosixFilePermissions(Path.of(args[0]),
                                    java.nio.file.attribute.PosixFilePermissions.fromString("rw-rw-rw-"));
                            System.out.println("listening");
                            try (SocketChannel client = listener.accept()) {
                                long received = 0;
                                ByteBuffer buffer = ByteBuffer.allocate(4096);
                                for (int n; (n = client.read(buffer)) >= 0; buffer.clear()) {
                                    received += n;
                                }
                                System.out.println("received " + received);
                            }
                        }
                    }
                }
                """);
        Files.setPosixFilePermissions(source, PosixFilePermissions.fromString("rw-r--r--"));
        Path foreignSocket = foreign.resolve("shim.sock");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process server = new ProcessBuilder("setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY, "--clear-groups",
                java, source.toString(), foreignSocket.toString()).redirectErrorStream(true).start();
        try {
            BufferedReader output = new BufferedReader(new InputStreamReader(server.getInputStream(),
                    StandardCharsets.UTF_8));
            assertThat(output.readLine()).isEqualTo("listening");
            String owner = Files.getOwner(foreign).getName();

            StepVerifier.create(TtrpcClient.create().socket(foreignSocket).runOn(loops).connect())
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(TtrpcClosedException.class)
                            .hasMessageContaining(foreignSocket.toString())
                            .hasMessageContaining("user " + owner))
                    .verify(TIMEOUT);

            assertThat(output.readLine()).as("what the foreign server was sent").isEqualTo("received 0");
            assertThat(server.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
            assertThat(server.exitValue()).isZero();
        } finally {
            server.destroyForcibly().waitFor();
            Files.deleteIfExists(foreignSocket);
        }
    }
}
