package org.shimmer.runtime.linux.ttrpc;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import com.google.protobuf.BytesValue;
import com.google.protobuf.Empty;
import com.google.protobuf.Int64Value;
import com.google.protobuf.StringValue;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.SocketException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Function;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.linux.shim.proto.ConnectRequest;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.linux.shim.proto.ConnectResponse;
import org.shimmer.runtime.linux.testing.NettyLeakDetection;
import org.shimmer.runtime.linux.ttrpc.proto.Request;
import org.shimmer.runtime.linux.ttrpc.proto.Response;
import org.shimmer.runtime.linux.ttrpc.proto.Status;
import reactor.core.Disposable;
import reactor.core.publisher.BaseSubscriber;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;
import reactor.netty.resources.LoopResources;
import reactor.test.StepVerifier;

/** Our client against our server over a real unix socket, plus a raw peer for what no client would send. */
@ExtendWith(NettyLeakDetection.class)
class TtrpcClientServerTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(10);
    private static final String SERVICE = "shimmer.test.Echo";
    private static final String TASK = "containerd.task.v2.Task";

    @TempDir
    Path temp;

    private LoopResources loops;
    private Scheduler blocking;
    private Path socket;
    private TtrpcServerHandle server;
    private final AtomicInteger closeHooks = new AtomicInteger();

    static TtrpcService echoService() {
        return TtrpcService.named(SERVICE)
                .method("Echo", StringValue.parser(), (call, request) -> Mono.just(request))
                .method("Delay", Int64Value.parser(), (call, request) ->
                        Mono.delay(Duration.ofMillis(request.getValue())).thenReturn(request))
                .method("Never", Empty.parser(), (call, request) -> Mono.never())
                .method("NotFound", Empty.parser(), (call, request) ->
                        Mono.error(new TtrpcStatusException(StatusCode.NOT_FOUND, "thing: not found")))
                .method("Boom", Empty.parser(), (call, request) -> Mono.error(new IllegalStateException("boom")))
                .method("Namespace", Empty.parser(), (call, request) ->
                        Mono.just(StringValue.of(call.namespace() + "|" + call.metadata().keySet())))
                .method("Huge", Empty.parser(), (call, request) ->
                        Mono.just(BytesValue.of(ByteString.copyFrom(new byte[Frames.MAX_BODY_LENGTH + 1]))))
                .method("Nothing", Empty.parser(), (call, request) -> Mono.empty());
    }

    @BeforeEach
    void setUp() {
        loops = LoopResources.create("ttrpc-test", 1, 2, true);
        blocking = Schedulers.newBoundedElastic(4, 1000, "ttrpc-test-blocking");
        socket = temp.resolve("sockets/echo.sock");
        server = bind(TtrpcServer.create());
    }

    @AfterEach
    void tearDown() {
        server.disposeNow(TIMEOUT);
        loops.disposeLater(Duration.ZERO, TIMEOUT).block(TIMEOUT);
        blocking.dispose();
    }

    private TtrpcServerHandle bind(TtrpcServer template) {
        return template.socket(socket).runOn(loops).blockingOn(blocking).service(echoService()).bind().block(TIMEOUT);
    }

    private TtrpcConnection connect() {
        return TtrpcClient.create().socket(socket).runOn(loops).doOnClose(closeHooks::incrementAndGet).connect()
                .block(TIMEOUT);
    }

    private static Mono<String> echo(TtrpcConnection connection, String text) {
        return connection.call(SERVICE, "Echo", StringValue.of(text), StringValue.parser()).map(StringValue::getValue);
    }

    @Test
    void roundTripsAndSendsLowerCaseMetadata() {
        TtrpcConnection connection = connect();

        StepVerifier.create(echo(connection, "hello")).expectNext("hello").verifyComplete();
        CallOptions options = CallOptions.defaults().withNamespace("rtest").withMetadata("X-Trace", "1");
        StepVerifier.create(connection.call(SERVICE, "Namespace", Empty.getDefaultInstance(), StringValue.parser(),
                        options).map(StringValue::getValue))
                .assertNext(value -> assertThat(value)
                        .startsWith("rtest|").contains("containerd-namespace-ttrpc").contains("x-trace"))
                .verifyComplete();
        StepVerifier.create(connection.call(SERVICE, "Nothing", Empty.getDefaultInstance(), Empty.parser()))
                .expectNext(Empty.getDefaultInstance()).verifyComplete();
        connection.dispose();
    }

    @Test
    void concurrentCallsAreAnsweredInCompletionOrderOnTheirOwnStreams() {
        TtrpcConnection connection = connect();
        List<String> completed = new CopyOnWriteArrayList<>();

        Mono<Void> slow = connection.call(SERVICE, "Delay", Int64Value.of(500), Int64Value.parser())
                .doOnNext(v -> completed.add("slow")).then();
        Flux<String> fast = Flux.range(0, 64).flatMap(i -> echo(connection, "call-" + i)
                .doOnNext(completed::add), 64);

        List<String> expected = IntStream.range(0, 64).mapToObj(i -> "call-" + i).toList();
        StepVerifier.create(Mono.zip(slow.thenReturn(true), fast.collectList()).map(both -> both.getT2()))
                .assertNext(values -> assertThat(values).containsExactlyInAnyOrderElementsOf(expected))
                .verifyComplete();
        assertThat(completed).hasSize(65).endsWith("slow");
        connection.dispose();
    }

    @Test
    void statusRepliesBecomeTypedExceptions() {
        TtrpcConnection connection = connect();

        expectStatus(connection.call(SERVICE, "NotFound", Empty.getDefaultInstance(), Empty.parser()),
                StatusCode.NOT_FOUND, "thing: not found");
        expectStatus(connection.call(SERVICE, "Boom", Empty.getDefaultInstance(), Empty.parser()),
                StatusCode.UNKNOWN, "boom");
        expectStatus(connection.call("no.such.Service", "Echo", Empty.getDefaultInstance(), Empty.parser()),
                StatusCode.UNIMPLEMENTED, "service no.such.Service");
        expectStatus(connection.call(SERVICE, "NoSuchMethod", Empty.getDefaultInstance(), Empty.parser()),
                StatusCode.UNIMPLEMENTED, "method NoSuchMethod");
        expectStatus(connection.call(SERVICE, "Huge", Empty.getDefaultInstance(), BytesValue.parser()),
                StatusCode.RESOURCE_EXHAUSTED, "exceeds the maximum message size");
        StepVerifier.create(echo(connection, "still usable")).expectNext("still usable").verifyComplete();
        connection.dispose();
    }

    @Test
    void aCallThatTimesOutFreesItsStream() {
        TtrpcConnection connection = connect();

        StepVerifier.create(connection.call(SERVICE, "Never", Empty.getDefaultInstance(), Empty.parser(),
                        CallOptions.defaults().withTimeout(Duration.ofMillis(200))))
                .expectErrorSatisfies(e -> assertThat(e)
                        .isInstanceOf(TtrpcTimeoutException.class)
                        .hasMessageContaining(SERVICE + "/Never had no answer within PT0.2S"))
                .verify(TIMEOUT);

        assertThat(connection.pendingCalls()).isZero();
        StepVerifier.create(echo(connection, "after")).expectNext("after").verifyComplete();
        connection.dispose();
    }

    @Test
    void aCallSendsATimeoutOnlyWhenItsCallerGivesOneAndOnlyThenTimesOut() throws Exception {
        Path rawSocket = temp.resolve("raw.sock");
        try (ServerSocketChannel listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            listener.bind(UnixDomainSocketAddress.of(rawSocket));
            TtrpcConnection connection = TtrpcClient.create().socket(rawSocket).runOn(loops).connect().block(TIMEOUT);
            try (RawPeer peer = RawPeer.accept(listener)) {
                // No deadline: timeout_nano 0, which proto3 leaves out, so the frame is the one Go's client sends.
                Mono<ConnectResponse> connect = connection.call(TASK, "Connect",
                        ConnectRequest.newBuilder().setId("e1").build(), ConnectResponse.parser()).cache();
                connect.subscribe(response -> {}, error -> {});
                RawPeer.RawFrame sent = peer.readFrame(TIMEOUT);
                assertThat(Request.parseFrom(sent.body()).getTimeoutNano()).isZero();
                assertThat(HexFormat.of().formatHex(sent.body()))
                        .isEqualTo(FramesTest.CONNECT_REQUEST.substring(2 * Frames.HEADER_LENGTH));
                peer.sendFrame(sent.streamId(), Frames.TYPE_RESPONSE,
                        HexFormat.of().parseHex(FramesTest.CONNECT_RESPONSE.substring(2 * Frames.HEADER_LENGTH)));
                assertThat(connect.block(TIMEOUT).getShimPid()).isEqualTo(13027);

                Mono<ConnectResponse> bounded = connection.call(TASK, "Connect",
                        ConnectRequest.newBuilder().setId("e1").build(), ConnectResponse.parser(),
                        CallOptions.defaults().withTimeout(Duration.ofSeconds(7))).cache();
                bounded.subscribe(response -> {}, error -> {});
                sent = peer.readFrame(TIMEOUT);
                assertThat(Request.parseFrom(sent.body()).getTimeoutNano()).isEqualTo(7_000_000_000L);
                peer.sendFrame(sent.streamId(), Frames.TYPE_RESPONSE, Response.getDefaultInstance().toByteArray());
                assertThat(bounded.block(TIMEOUT)).isEqualTo(ConnectResponse.getDefaultInstance());

                // Neither is answered: only the one with a timeout ends, the other still waits for its answer.
                Disposable unbounded = connection.call(TASK, "Wait", Empty.getDefaultInstance(), Empty.parser())
                        .subscribe();
                StepVerifier.create(connection.call(TASK, "Wait", Empty.getDefaultInstance(), Empty.parser(),
                                CallOptions.defaults().withTimeout(Duration.ofMillis(300))))
                        .expectError(TtrpcTimeoutException.class)
                        .verify(TIMEOUT);
                assertThat(Request.parseFrom(peer.readFrame(TIMEOUT).body()).getTimeoutNano()).isZero();
                assertThat(Request.parseFrom(peer.readFrame(TIMEOUT).body()).getTimeoutNano())
                        .isEqualTo(300_000_000L);
                assertThat(connection.pendingCalls()).isEqualTo(1);
                unbounded.dispose();
                assertThat(connection.pendingCalls()).isZero();
            }
            StepVerifier.create(connection.onClose()).verifyComplete();
        }
    }

    @Test
    void ourServerCancelsAHandlerAtTheClientsDeadlineAndAnswersDeadlineExceeded() throws Exception {
        server.disposeNow(TIMEOUT);
        CountDownLatch cancelled = new CountDownLatch(2);
        server = bind(TtrpcServer.create().service(TtrpcService.named("shimmer.test.Slow")
                .method("Hang", Empty.parser(),
                        (call, request) -> Mono.<Empty>never().doOnCancel(cancelled::countDown))));
        Request hang = Request.newBuilder().setService("shimmer.test.Slow").setMethod("Hang")
                .setTimeoutNano(Duration.ofMillis(300).toNanos()).build();
        try (RawPeer peer = RawPeer.connect(socket)) {
            long sent = System.nanoTime();
            peer.sendRequest(1, hang);
            RawPeer.RawFrame answer = peer.readFrame(TIMEOUT);
            assertThat(Duration.ofNanos(System.nanoTime() - sent)).isGreaterThanOrEqualTo(Duration.ofMillis(300));
            assertStatus(answer, 1, StatusCode.DEADLINE_EXCEEDED,
                    "context deadline exceeded: shimmer.test.Slow/Hang took longer than PT0.3S");

            // No deadline, or one not reached: the handler runs to its end.
            Request delay = Request.newBuilder().setService(SERVICE).setMethod("Delay")
                    .setPayload(Int64Value.of(500).toByteString()).build();
            peer.sendRequest(3, delay);
            answer = peer.readFrame(TIMEOUT);
            assertThat(answer.streamId()).isEqualTo(3);
            assertThat(Int64Value.parseFrom(answer.response().getPayload()).getValue()).isEqualTo(500);
            peer.sendRequest(5, delay.toBuilder().setTimeoutNano(TIMEOUT.toNanos()).build());
            answer = peer.readFrame(TIMEOUT);
            assertThat(answer.response().hasStatus()).isFalse();
            assertThat(Int64Value.parseFrom(answer.response().getPayload()).getValue()).isEqualTo(500);
        }
        // Our client, with a timeout: one exception whichever side notices first, and the handler is cancelled.
        TtrpcConnection connection = connect();
        StepVerifier.create(connection.call("shimmer.test.Slow", "Hang", Empty.getDefaultInstance(), Empty.parser(),
                        CallOptions.defaults().withTimeout(Duration.ofMillis(200))))
                .expectError(TtrpcTimeoutException.class)
                .verify(TIMEOUT);
        assertThat(cancelled.await(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        assertThat(connection.pendingCalls()).isZero();
        connection.dispose();
    }

    @Test
    void aPrivateNameLeftByAServerKilledBeforeItsLinkIsRemovedByTheNextBindOnceAbandonedAndNothingElse()
            throws Exception {
        Path dir = socket.getParent();
        Path abandoned = dir.resolve(".deadbeef0001");
        Path fresh = dir.resolve(".deadbeef0002");
        Path listening = dir.resolve(".listening001");
        Path notASocket = dir.resolve(".regularfil12");
        Path otherName = dir.resolve(".DEADBEEF0003");
        Path otherSocket = dir.resolve("stale-other.sock");
        FileTime twoMinutesAgo = FileTime.from(Instant.now().minus(Duration.ofMinutes(2)));
        try (ServerSocketChannel live = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            live.bind(UnixDomainSocketAddress.of(listening));
            for (Path dead : List.of(abandoned, fresh, otherName, otherSocket)) {
                try (ServerSocketChannel gone = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
                    gone.bind(UnixDomainSocketAddress.of(dead));
                }
            }
            Files.writeString(notASocket, "user data");
            for (Path old : List.of(abandoned, listening, notASocket, otherName, otherSocket)) {
                Files.setLastModifiedTime(old, twoMinutesAgo);
            }

            Path second = dir.resolve("second.sock");
            TtrpcServerHandle secondServer = TtrpcServer.create().socket(second).runOn(loops).blockingOn(blocking)
                    .service(echoService()).bind().block(TIMEOUT);
            try {
                assertThat(abandoned).doesNotExist();
                // Made just now: its server may still be between its bind and its link.
                assertThat(List.of(fresh, listening, notASocket, otherName, otherSocket, socket, second))
                        .allMatch(Files::exists);
                assertThat(Files.readString(notASocket)).isEqualTo("user data");
                try (SocketChannel peer = SocketChannel.open(UnixDomainSocketAddress.of(listening))) {
                    assertThat(peer.isConnected()).isTrue();
                }
                TtrpcConnection connection = connect();
                StepVerifier.create(echo(connection, "still served")).expectNext("still served").verifyComplete();
                connection.dispose();
            } finally {
                secondServer.disposeNow(TIMEOUT);
            }
            assertThat(second).doesNotExist();
        }
    }

    @Test
    void aDeadlineExceededAnswerToACallWithATimeoutIsATimeout() throws Exception {
        Path rawSocket = temp.resolve("raw.sock");
        try (ServerSocketChannel listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            listener.bind(UnixDomainSocketAddress.of(rawSocket));
            TtrpcConnection connection = TtrpcClient.create().socket(rawSocket).runOn(loops).connect().block(TIMEOUT);
            try (RawPeer server = RawPeer.accept(listener)) {
                Mono<Empty> bounded = connection.call(TASK, "Wait", Empty.getDefaultInstance(), Empty.parser(),
                        CallOptions.defaults().withTimeout(TIMEOUT)).cache();
                bounded.subscribe(response -> {}, error -> {});
                Mono<Empty> unbounded = connection.call(TASK, "Wait", Empty.getDefaultInstance(), Empty.parser())
                        .cache();
                unbounded.subscribe(response -> {}, error -> {});
                byte[] deadlineExceeded = Response.newBuilder().setStatus(Status.newBuilder()
                        .setCode(StatusCode.DEADLINE_EXCEEDED.value()).setMessage("context deadline exceeded"))
                        .build().toByteArray();
                server.sendFrame(server.readFrame(TIMEOUT).streamId(), Frames.TYPE_RESPONSE, deadlineExceeded);
                server.sendFrame(server.readFrame(TIMEOUT).streamId(), Frames.TYPE_RESPONSE, deadlineExceeded);

                StepVerifier.create(bounded)
                        .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(TtrpcTimeoutException.class)
                                .hasMessageContaining(TASK + "/Wait had no answer within PT10S")
                                .hasMessageContaining("the server said context deadline exceeded"))
                        .verify(TIMEOUT);
                // Without a timeout of ours it is the server's status, as any other.
                StepVerifier.create(unbounded)
                        .expectErrorSatisfies(e -> assertThat(((TtrpcStatusException) e).code())
                                .isEqualTo(StatusCode.DEADLINE_EXCEEDED))
                        .verify(TIMEOUT);
                assertThat(connection.pendingCalls()).isZero();
            }
            connection.dispose();
        }
    }

    @Test
    void callsFromManyThreadsAndFromAnswersAreFlushedTogetherAndEachGetsItsOwnAnswer() {
        TtrpcConnection connection = connect();
        Scheduler callers = Schedulers.newParallel("ttrpc-test-callers", 4);
        try {
            // First calls come from four threads (their flushes are merged into one task on the event loop); each
            // answer sets off a second call from the event loop while it reads (flushed once the read is done).
            Flux<String> answers = Flux.range(0, 200).flatMap(i -> Mono.defer(() -> echo(connection, "call-" + i))
                    .subscribeOn(callers)
                    .flatMap(first -> echo(connection, first + "+")), 200);

            List<String> expected = IntStream.range(0, 200).mapToObj(i -> "call-" + i + "+").toList();
            StepVerifier.create(answers.collectList())
                    .assertNext(values -> assertThat(values).containsExactlyInAnyOrderElementsOf(expected))
                    .verifyComplete();
            assertThat(connection.pendingCalls()).isZero();
        } finally {
            callers.dispose();
            connection.dispose();
        }
    }

    @Test
    void cancellingACallFreesItsStream() {
        TtrpcConnection connection = connect();
        Disposable waiting = connection.call(SERVICE, "Never", Empty.getDefaultInstance(), Empty.parser()).subscribe();
        assertThat(connection.pendingCalls()).isEqualTo(1);

        waiting.dispose();

        assertThat(connection.pendingCalls()).isZero();
        StepVerifier.create(echo(connection, "after")).expectNext("after").verifyComplete();
        connection.dispose();
    }

    @Test
    void closingFailsEveryPendingCallOnceAndRunsTheHookOnce() {
        TtrpcConnection connection = connect();
        List<Mono<Empty>> waiting = List.of(
                connection.call(SERVICE, "Never", Empty.getDefaultInstance(), Empty.parser()).cache(),
                connection.call(SERVICE, "Never", Empty.getDefaultInstance(), Empty.parser()).cache(),
                connection.call(SERVICE, "Never", Empty.getDefaultInstance(), Empty.parser()).cache());
        waiting.forEach(call -> call.subscribe(v -> {}, e -> {}));
        StepVerifier.create(echo(connection, "sync")).expectNext("sync").verifyComplete();
        assertThat(connection.pendingCalls()).isEqualTo(3);

        server.disposeNow(TIMEOUT);

        for (Mono<Empty> call : waiting) {
            StepVerifier.create(call)
                    .expectErrorSatisfies(e -> assertThat(e)
                            .isInstanceOf(TtrpcClosedException.class).hasMessageContaining("closed"))
                    .verify(TIMEOUT);
        }
        StepVerifier.create(connection.onClose()).verifyComplete();
        StepVerifier.create(echo(connection, "late")).expectError(TtrpcClosedException.class).verify(TIMEOUT);
        connection.dispose();
        assertThat(closeHooks).hasValue(1);
        assertThat(connection.isDisposed()).isTrue();
        assertThat(socket).doesNotExist();
    }

    @Test
    void anOversizedRequestFailsOnlyThatCall() {
        TtrpcConnection connection = connect();

        StepVerifier.create(echo(connection, "x".repeat(Frames.MAX_BODY_LENGTH)))
                .expectErrorSatisfies(e -> assertThat(e)
                        .isInstanceOf(TtrpcMessageTooLargeException.class)
                        .hasMessageContaining(SERVICE + "/Echo: request message length"))
                .verify(TIMEOUT);

        StepVerifier.create(echo(connection, "fine")).expectNext("fine").verifyComplete();
        assertThat(connection.pendingCalls()).isZero();
        connection.dispose();
    }

    @Test
    void connectingToNothingFailsAtOnce() {
        StepVerifier.create(TtrpcClient.create().socket(temp.resolve("absent.sock")).runOn(loops).connect())
                .expectErrorSatisfies(e -> assertThat(e)
                        .isInstanceOf(TtrpcClosedException.class).hasMessageContaining("absent.sock"))
                .verify(Duration.ofSeconds(2));
    }

    @Test
    void socketIs0600InA0700DirectoryAndRemovedOnShutdown() throws IOException {
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(socket))).isEqualTo("rw-------");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(socket.getParent())))
                .isEqualTo("rwx------");
        TtrpcConnection connection = connect();
        StepVerifier.create(echo(connection, "x")).expectNext("x").verifyComplete();
        assertThat(server.connections()).isEqualTo(1);

        server.disposeNow(TIMEOUT);

        assertThat(socket).doesNotExist();
        StepVerifier.create(connection.onClose()).verifyComplete();
    }

    @Test
    void aServerWhoseSocketWasRemovedAndReboundLeavesTheNewServersSocketOnShutdown() throws IOException {
        // An operator (or a cleanup) removes the first server's socket while it serves; a second server binds the
        // same path. The first one's shutdown must not take the second's address away.
        Files.delete(socket);
        TtrpcServerHandle second = bind(TtrpcServer.create());
        try {
            server.disposeNow(TIMEOUT);

            assertThat(socket).exists();
            StepVerifier.create(echo(connect(), "still served")).expectNext("still served").verifyComplete();
        } finally {
            second.disposeNow(TIMEOUT);
        }
        assertThat(socket).doesNotExist();

        // And a plain file put where a stopped server's socket was is not the server's to remove either.
        server = bind(TtrpcServer.create());
        Files.delete(socket);
        Files.writeString(socket, "not a socket");
        server.disposeNow(TIMEOUT);
        assertThat(socket).hasContent("not a socket");
        Files.delete(socket);
        assertNothingIn(socket.getParent());
        server = bind(TtrpcServer.create());
    }

    @Test
    void ofTwoServersBindingOneAddressAtOnceOneServesAndTheOtherIsRefusedLeavingNoFile() throws Exception {
        server.disposeNow(TIMEOUT);
        assertOneOfConcurrentBindsServes(socket, 2, false, 20);
        server = bind(TtrpcServer.create());
    }

    @Test
    void ofFourServersBindingOneAddressOverAStaleSocketOneServes() throws Exception {
        // Each finds the stale socket, sees nobody serve it and removes it: only the file it found, so none removes
        // the socket another has linked there meanwhile (by path, two of four used to end up serving).
        server.disposeNow(TIMEOUT);
        assertOneOfConcurrentBindsServes(socket, 4, true, 100);
        server = bind(TtrpcServer.create());
    }

    @Test
    void anAddressUpToTheJdksLimitBindsAndOneBeyondItIsRefusedNamingIt() throws Exception {
        // The JDK binds at most 106 bytes. Near that the directory leaves no room for the private name: the server
        // binds its address directly, and concurrent binds still end with one server and a refusal naming it.
        server.disposeNow(TIMEOUT);
        Path base = temp.toAbsolutePath();
        for (int length = 96; length <= 106; length += 5) {
            Path address = longAddress(base, length);
            assertThat(address.toString().getBytes(StandardCharsets.UTF_8)).hasSize(length);
            assertOneOfConcurrentBindsServes(address, 2, length == 106, 5);
        }
        Path tooLong = longAddress(base, 107);
        StepVerifier.create(TtrpcServer.create().socket(tooLong).runOn(loops).blockingOn(blocking).bind())
                .expectErrorSatisfies(e -> assertThat(e).hasMessageContaining(tooLong.toString())
                        .hasMessageContaining("107 bytes"))
                .verify(TIMEOUT);
        server = bind(TtrpcServer.create());
    }

    @Test
    void ofManyServersBindingAnAddressWithNoRoomForAPrivateNameOneServes() throws Exception {
        // Bound directly, a socket refuses connections between the JDK's bind and its listen, as a stale one does: a
        // second server's stale check removed it then, and both served (a CI run). Eight at once, 200 times, hit
        // that window within a few seconds here without the directory's lock held across it.
        server.disposeNow(TIMEOUT);
        assertOneOfConcurrentBindsServes(longAddress(temp.toAbsolutePath(), 101), 8, false, 200);
        server = bind(TtrpcServer.create());
    }

    @Test
    void aServerBindingAnAddressDirectlyWaitsForTheDirectorysLockWithoutHoldingAThread() throws Exception {
        server.disposeNow(TIMEOUT);
        Path address = longAddress(temp.toAbsolutePath(), 106);
        int held = LinuxCalls.open(address.getParent(), LinuxCalls.O_RDONLY | LinuxCalls.O_DIRECTORY
                | LinuxCalls.O_CLOEXEC);
        // One thread: a wait that held it would keep both the work below and the lock's holder from running.
        Scheduler oneThread = Schedulers.newBoundedElastic(1, 100, "ttrpc-test-one-thread");
        TtrpcServerHandle direct;
        try {
            assertThat(LinuxCalls.flock(held, LinuxCalls.LOCK_EX | LinuxCalls.LOCK_NB)).isTrue();
            CompletableFuture<TtrpcServerHandle> binding = TtrpcServer.create().socket(address).runOn(loops)
                    .blockingOn(oneThread).service(echoService()).bind().toFuture();
            for (int i = 0; i < 5; i++) {
                assertThat(Mono.fromCallable(() -> "ran").delayElement(Duration.ofMillis(10))
                        .subscribeOn(oneThread).block(TIMEOUT)).as("other work while the bind waits").isEqualTo("ran");
            }
            assertThat(binding).isNotDone();
            assertThat(address).doesNotExist();
            LinuxCalls.close(held);
            held = -1;
            direct = binding.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        } finally {
            if (held >= 0) {
                LinuxCalls.close(held);
            }
        }
        try {
            TtrpcConnection client = TtrpcClient.create().socket(address).runOn(loops).connect().block(TIMEOUT);
            StepVerifier.create(echo(client, "after the lock")).expectNext("after the lock").verifyComplete();
        } finally {
            direct.disposeNow(TIMEOUT);
            oneThread.dispose();
        }
        assertThat(address).doesNotExist();
        assertThat(descriptorsOf(address.getParent())).isZero();
        server = bind(TtrpcServer.create());
    }

    /** {@code dir/x.sock}, {@code length} bytes in all, in a fresh 0700 directory under {@code base}. */
    private static Path longAddress(Path base, int length) throws IOException {
        String prefix = base + "/l" + length + "-";
        Path dir = Path.of(prefix + "d".repeat(length - prefix.length() - "/x.sock".length()));
        Files.createDirectories(dir);
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        return dir.resolve("x.sock");
    }

    /**
     * {@code binders} servers bind {@code address} at once, {@code rounds} times (over a stale socket if asked):
     * each time exactly one serves, the others are refused with an error naming the address, and once the winner
     * stops nothing is left in the directory.
     */
    private void assertOneOfConcurrentBindsServes(Path address, int binders, boolean stale, int rounds)
            throws Exception {
        for (int round = 0; round < rounds; round++) {
            if (stale) {
                try (ServerSocketChannel dead = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
                    dead.bind(UnixDomainSocketAddress.of(address));
                }
            }
            List<Mono<Object>> binds = IntStream.range(0, binders)
                    .mapToObj(i -> TtrpcServer.create().socket(address).runOn(loops).blockingOn(blocking)
                            .service(echoService()).bind().subscribeOn(Schedulers.parallel())
                            .<Object>map(handle -> handle).onErrorResume(error -> Mono.just(error)))
                    .toList();
            List<Object> outcomes = Flux.merge(binds).collectList().block(TIMEOUT);
            List<TtrpcServerHandle> bound = outcomes.stream().filter(TtrpcServerHandle.class::isInstance)
                    .map(TtrpcServerHandle.class::cast).toList();
            try {
                assertThat(bound).as("round %d: %s", round, outcomes).hasSize(1);
                assertThat(outcomes.stream().filter(Throwable.class::isInstance).map(Throwable.class::cast))
                        .hasSize(binders - 1)
                        .allSatisfy(error -> assertThat(error).hasMessageContaining(address.toString()));
                TtrpcConnection client = TtrpcClient.create().socket(address).runOn(loops).connect().block(TIMEOUT);
                StepVerifier.create(echo(client, "winner")).expectNext("winner").verifyComplete();
                try (Stream<Path> files = Files.list(address.getParent())) {
                    assertThat(files).containsExactly(address);
                }
            } finally {
                bound.forEach(handle -> handle.disposeNow(TIMEOUT));
            }
            assertThat(address).doesNotExist();
        }
    }

    @Test
    void aSubscriberThatCancelsAsItTakesTheHandleKeepsAServingServer() {
        // blockFirst(), next() and take(1) cancel upstream as the value arrives, on the io thread or after a
        // publishOn on another: the handle is the subscriber's by then (the cancel used to stop its server and
        // remove its socket).
        server.disposeNow(TIMEOUT);
        List<Function<Mono<TtrpcServerHandle>, TtrpcServerHandle>> takers = List.of(
                bind -> Flux.from(bind).blockFirst(TIMEOUT),
                bind -> bind.flux().next().block(TIMEOUT),
                bind -> bind.flux().take(1).single().block(TIMEOUT),
                bind -> bind.publishOn(Schedulers.parallel()).flux().blockFirst(TIMEOUT));
        for (Function<Mono<TtrpcServerHandle>, TtrpcServerHandle> take : takers) {
            TtrpcServerHandle handle = take.apply(TtrpcServer.create().socket(socket).runOn(loops)
                    .blockingOn(blocking).service(echoService()).bind());
            try {
                assertThat(handle.isDisposed()).isFalse();
                StepVerifier.create(echo(connect(), "kept")).expectNext("kept").verifyComplete();
            } finally {
                handle.disposeNow(TIMEOUT);
            }
            assertThat(socket).doesNotExist();
        }
        server = bind(TtrpcServer.create());
    }

    @Test
    void aBindCancelledAtAnyMomentLeavesNoServerAndNoFile() throws Exception {
        server.disposeNow(TIMEOUT);
        assertCancelledBindsLeaveNothing(200);
        server = bind(TtrpcServer.create());
    }

    @Test
    void aDirectBindCancelledAtAnyMomentLeavesNoServerAndNoFile() throws Exception {
        // Bound directly, the handle passes more of our operators after it is marked handed over (the lock's
        // release among them): a cancel that reached one of them first dropped it there, still serving, its
        // socket left, about once in 200 rounds; 1000 rounds take about a second.
        server.disposeNow(TIMEOUT);
        Path saved = socket;
        socket = longAddress(temp.toAbsolutePath(), 106);
        try {
            assertCancelledBindsLeaveNothing(1000);
        } finally {
            socket = saved;
        }
        server = bind(TtrpcServer.create());
    }

    /** Binds {@link #socket} and cancels at a random moment, {@code rounds} times: nothing is left each time. */
    private void assertCancelledBindsLeaveNothing(int rounds) throws Exception {
        Random random = new Random(7);
        for (int round = 0; round < rounds; round++) {
            bindAndCancel(random.nextInt(3_000_000));
            // Whatever the cancel caught (before the bind, during it, while the socket was linked into place),
            // nothing serves and no file is left, once the disposal it started has run.
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            while (true) {
                List<Path> files;
                try (Stream<Path> listed = Files.exists(socket.getParent()) ? Files.list(socket.getParent())
                        : Stream.empty()) {
                    files = listed.toList();
                }
                if (files.isEmpty()) {
                    break;
                }
                assertThat(System.nanoTime()).as("round %d: left %s", round, files).isLessThan(deadline);
                Thread.sleep(1);
            }
        }
        // Nor a descriptor of the directory's lock, which every later bind there would wait on.
        assertThat(descriptorsOf(socket.getParent())).isZero();
    }

    @Test
    void connectionsAcceptedWhileABindIsCancelledOrAServerStopsAreClosedNotServed() throws Exception {
        // A peer keeps connecting while binds are cancelled at random points and servers stop: every connection
        // it got in must be closed by the server (end of stream) once the cancel or the stop has run. A snapshot of
        // the live connections taken as the listener closed missed those accepted meanwhile; they went on being
        // answered, by a server nobody held any more.
        server.disposeNow(TIMEOUT);
        Random random = new Random(11);
        int caught = 0;
        for (int round = 0; round < 100; round++) {
            List<SocketChannel> connected = new CopyOnWriteArrayList<>();
            AtomicBoolean connecting = new AtomicBoolean(true);
            Thread peer = Thread.ofPlatform().start(() -> {
                while (connecting.get()) {
                    try {
                        SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX);
                        try {
                            channel.connect(UnixDomainSocketAddress.of(socket));
                            connected.add(channel);
                        } catch (IOException notServed) {
                            channel.close();
                        }
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                }
            });
            bindAndCancel(random.nextInt(4_000_000));
            connecting.set(false);
            peer.join();
            caught += connected.size();
            for (SocketChannel channel : connected) {
                try (channel) {
                    assertThat(readsEndOfStream(channel)).as("round %d: a connection still open", round).isTrue();
                }
            }
        }
        assertThat(caught).as("connections made while binds were cancelled or servers stopped").isPositive();
        server = bind(TtrpcServer.create());
    }

    @Test
    void aConnectCancelledAtAnyMomentLeavesNoConnection() throws Exception {
        // A connection netty made but that never reached the subscriber (a cancel as it was being handed over) is
        // read by nobody: it would stay open for good, its peer's end too. One CI run left a unix socket open.
        TtrpcClient client = TtrpcClient.create().socket(socket).runOn(loops);
        client.connect().flatMap(warm -> warm.disposeLater()).block(TIMEOUT);
        Map<Integer, String> before = Leaks.openFds();
        Random random = new Random(11);
        for (int round = 0; round < 1000; round++) {
            BaseSubscriber<TtrpcConnection> subscriber = new BaseSubscriber<>() {
                @Override
                protected void hookOnNext(TtrpcConnection connection) {
                    // What reached the subscriber is its own to close; closed as it comes: an onNext can still be
                    // under way on the io thread when dispose() returns (handed over before the cancel), and a
                    // list emptied after dispose() would miss it.
                    connection.dispose();
                }
            };
            client.connect().subscribe(subscriber);
            LockSupport.parkNanos(random.nextInt(2_000_000));
            subscriber.dispose();
        }
        assertThat(Leaks.fdsAddedSince(before, Duration.ofSeconds(5))).as("descriptors left open").isEmpty();
        StepVerifier.create(echo(connect(), "after")).expectNext("after").verifyComplete();
    }

    /**
     * Binds {@link #socket} and cancels after {@code nanos}; stops the server the bind handed out, if it did (that
     * one is the subscriber's), and returns it. A handle can be handed over just as the subscriber cancels, on the
     * io thread: the subscriber stops that one itself.
     */
    private List<TtrpcServerHandle> bindAndCancel(int nanos) {
        List<TtrpcServerHandle> bound = new CopyOnWriteArrayList<>();
        BaseSubscriber<TtrpcServerHandle> subscriber = new BaseSubscriber<>() {
            @Override
            protected void hookOnNext(TtrpcServerHandle handle) {
                bound.add(handle);
                if (isDisposed()) {
                    handle.dispose();
                }
            }
        };
        TtrpcServer.create().socket(socket).runOn(loops).blockingOn(blocking).service(echoService()).bind()
                .subscribe(subscriber);
        LockSupport.parkNanos(nanos);
        subscriber.dispose();
        bound.forEach(handle -> handle.disposeNow(TIMEOUT));
        return bound;
    }

    private static void assertNothingIn(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            assertThat(files).as("left in %s", dir).isEmpty();
        }
    }

    /** How many of this process's open descriptors name {@code path}. */
    private static long descriptorsOf(Path path) throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(fd -> {
                try {
                    return Files.readSymbolicLink(fd).equals(path);
                } catch (IOException closedMeanwhile) {
                    return false;
                }
            }).count();
        }
    }

    /** Whether the server closes or resets {@code channel} (it sends nothing unasked) within the test's timeout. */
    private static boolean readsEndOfStream(SocketChannel channel) throws IOException, InterruptedException {
        channel.configureBlocking(false);
        ByteBuffer buffer = ByteBuffer.allocate(64);
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            buffer.clear();
            try {
                if (channel.read(buffer) < 0) {
                    return true;
                }
            } catch (SocketException reset) {
                // Still in the listener's backlog as it closed: never accepted, reset by the kernel.
                return true;
            }
            Thread.sleep(1);
        }
        return false;
    }

    @Test
    void aSocketDirectoryThatIsASymbolicLinkIsRefusedAndItsTargetLeftAlone() throws IOException {
        Path target = Files.createDirectories(temp.resolve("target"));
        Files.setPosixFilePermissions(target, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path link = Files.createSymbolicLink(temp.resolve("link"), target);

        StepVerifier.create(TtrpcServer.create().socket(link.resolve("x.sock")).runOn(loops).blockingOn(blocking)
                        .bind())
                .expectErrorSatisfies(e -> assertThat(e).hasMessageContaining(link.toString())
                        .hasMessageContaining("symbolic link"))
                .verify(TIMEOUT);
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(target))).isEqualTo("rwxr-xr-x");
        assertNothingIn(target);
    }

    @Test
    void aSocketDirectoryLockedElsewhereFailsTheBindAfterTenSecondsNamingIt() throws Exception {
        // Another holder of the directory's flock (a hostile or stopped process of the same user): the bind gives
        // up, naming the directory, and the io thread is free again; once the lock is gone the address binds.
        server.disposeNow(TIMEOUT);
        Path dir = socket.getParent();
        int held = LinuxCalls.open(dir, LinuxCalls.O_RDONLY | LinuxCalls.O_DIRECTORY | LinuxCalls.O_CLOEXEC);
        try {
            assertThat(LinuxCalls.flock(held, LinuxCalls.LOCK_EX | LinuxCalls.LOCK_NB)).isTrue();
            StepVerifier.create(TtrpcServer.create().socket(socket).runOn(loops).blockingOn(blocking).bind())
                    .expectErrorSatisfies(e -> assertThat(e).hasMessageContaining(dir.toString())
                            .hasMessageContaining("stayed locked"))
                    .verify(Duration.ofSeconds(30));
            // The server Netty had bound at the private name is stopped, and its file gone.
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            while (true) {
                try (Stream<Path> files = Files.list(dir)) {
                    if (files.findAny().isEmpty()) {
                        break;
                    }
                }
                assertThat(System.nanoTime() - deadline).as("files left in %s", dir).isNegative();
                Thread.sleep(1);
            }
        } finally {
            LinuxCalls.close(held);
        }
        assertThat(descriptorsOf(dir)).isZero();
        server = bind(TtrpcServer.create());
        StepVerifier.create(echo(connect(), "after")).expectNext("after").verifyComplete();
    }

    @Test
    void aServerStoppedAfterItsIoSchedulerRemovesItsSocketAllTheSame() throws Exception {
        // The plugin stopping: its io scheduler is gone before a server is disposed.
        server.disposeNow(TIMEOUT);
        Scheduler stopped = Schedulers.newBoundedElastic(1, 10, "ttrpc-test-stopping");
        TtrpcServerHandle handle = TtrpcServer.create().socket(socket).runOn(loops).blockingOn(stopped)
                .service(echoService()).bind().block(TIMEOUT);
        stopped.dispose();
        handle.disposeNow(TIMEOUT);
        assertNothingIn(socket.getParent());
        server = bind(TtrpcServer.create());
    }

    @Test
    void aStaleSocketIsReplacedButALiveOneOrAFileIsNot() throws IOException {
        server.disposeNow(TIMEOUT);
        try (ServerSocketChannel stale = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            stale.bind(UnixDomainSocketAddress.of(socket));
        }
        assertThat(socket).exists();

        server = bind(TtrpcServer.create());
        StepVerifier.create(echo(connect(), "rebound")).expectNext("rebound").verifyComplete();

        StepVerifier.create(TtrpcServer.create().socket(socket).runOn(loops).blockingOn(blocking).bind())
                .expectErrorSatisfies(e -> assertThat(e)
                        .isInstanceOf(UncheckedIOException.class).hasMessageContaining("another server is listening"))
                .verify(TIMEOUT);
        Path file = Files.writeString(socket.resolveSibling("plain"), "data");
        StepVerifier.create(TtrpcServer.create().socket(file).runOn(loops).blockingOn(blocking).bind())
                .expectErrorSatisfies(e -> assertThat(e).hasMessageContaining("not a socket"))
                .verify(TIMEOUT);
        assertThat(file).hasContent("data");
    }

    @Test
    void refusesASocketDirectoryOthersCanEnter() throws IOException {
        Path open = Files.createDirectories(temp.resolve("open"));
        Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rwxr-xr-x"));

        StepVerifier.create(TtrpcServer.create().socket(open.resolve("x.sock")).runOn(loops).blockingOn(blocking)
                        .bind())
                .expectErrorSatisfies(e -> assertThat(e).hasMessageContaining("must be mode 0700"))
                .verify(TIMEOUT);
        assertThat(open.resolve("x.sock")).doesNotExist();
        Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rwx-----x"));
        StepVerifier.create(TtrpcServer.create().socket(open.resolve("x.sock")).runOn(loops).blockingOn(blocking)
                        .bind())
                .expectErrorSatisfies(e -> assertThat(e).hasMessageContaining("must be mode 0700"))
                .verify(TIMEOUT);
        assertThat(open.resolve("x.sock")).doesNotExist();
    }

    @Test
    void refusesASocketDirectoryOfAnotherUser() throws Exception {
        // 0700, but nobody's: nobody could rename our socket away and link a server of its own in its place.
        Path theirs = Files.createDirectories(temp.resolve("theirs"));
        Files.setPosixFilePermissions(theirs, PosixFilePermissions.fromString("rwx------"));
        Files.setOwner(theirs, temp.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName("65534"));

        StepVerifier.create(TtrpcServer.create().socket(theirs.resolve("x.sock")).runOn(loops).blockingOn(blocking)
                        .bind())
                .expectErrorSatisfies(e -> assertThat(e)
                        .hasMessageContaining("socket directory " + theirs + " belongs to uid 65534, not to"))
                .verify(TIMEOUT);
        try (Stream<Path> left = Files.list(theirs)) {
            assertThat(left).isEmpty();
        }
    }

    @Test
    void servesInADirectoryStricterThan0700AsContainerdLeavesItsSocketDirectory() throws IOException {
        Path strict = Files.createDirectories(temp.resolve("strict"));
        Files.setPosixFilePermissions(strict, PosixFilePermissions.fromString("rw-------"));
        TtrpcServerHandle handle = TtrpcServer.create().socket(strict.resolve("x.sock")).runOn(loops)
                .blockingOn(blocking).bind().block(TIMEOUT);
        try {
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(strict.resolve("x.sock"))))
                    .isEqualTo("rw-------");
        } finally {
            handle.disposeNow(TIMEOUT);
        }
        assertThat(strict.resolve("x.sock")).doesNotExist();
    }

    @Test
    void peersThePolicyRefusesAreDisconnected() {
        server.disposeNow(TIMEOUT);
        server = bind(TtrpcServer.create().peerPolicy(peer -> false));
        TtrpcConnection connection = connect();

        StepVerifier.create(echo(connection, "x")).expectError(TtrpcClosedException.class).verify(TIMEOUT);
        StepVerifier.create(connection.onClose()).verifyComplete();
    }

    @Test
    void refusesAPeerOfAnotherUid() throws Exception {
        // Open the path to everyone, as a misconfiguration would: only SO_PEERCRED stands in the way then.
        Files.setPosixFilePermissions(temp, PosixFilePermissions.fromString("rwx--x--x"));
        Files.setPosixFilePermissions(socket.getParent(), PosixFilePermissions.fromString("rwx--x--x"));
        Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-rw-rw-"));
        Path probe = Files.writeString(temp.resolve("Probe.java"), """
                import java.net.*; import java.nio.*; import java.nio.channels.*;
                public class Probe {
                    public static void main(String[] args) throws Exception {
                        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                            ch.connect(UnixDomainSocketAddress.of(args[0]));
                            ch.write(ByteBuffer.wrap(new byte[] {0, 0, 0, 0, 0, 0, 0, 1, 1, 0}));
                            int read;
                            try { read = ch.read(ByteBuffer.allocate(64)); } catch (java.io.IOException reset) { read = -1; }
                            System.out.println(read < 0 ? "refused" : "answered");
                        }
                    }
                }
                """);
        Files.setPosixFilePermissions(probe, PosixFilePermissions.fromString("rw-r--r--"));
        String javaBinary = Path.of(System.getProperty("java.home"), "bin", "java").toString();

        Process process = new ProcessBuilder("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                javaBinary, probe.toString(), socket.toString())
                .redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);

        assertThat(process.waitFor()).as(output).isZero();
        assertThat(output.strip()).isEqualTo("refused");
        StepVerifier.create(echo(connect(), "own uid")).expectNext("own uid").verifyComplete();
    }

    @Test
    void hostilePeersGetContainerdsAnswersAndTheConnectionStaysUsable() throws Exception {
        try (RawPeer peer = RawPeer.connect(socket)) {
            Request echo = Request.newBuilder().setService(SERVICE).setMethod("Echo")
                    .setPayload(StringValue.of("ok").toByteString()).build();

            peer.sendRequest(2, echo);
            assertStatus(peer.readFrame(TIMEOUT), 2, StatusCode.INVALID_ARGUMENT,
                    "StreamID must be odd for client initiated streams");

            peer.sendFrame(3, Frames.TYPE_REQUEST, new byte[] {(byte) 0xff, (byte) 0xff});
            assertStatus(peer.readFrame(TIMEOUT), 3, StatusCode.INVALID_ARGUMENT, "unmarshal request error");

            peer.sendRequest(5, echo.toBuilder().setPayload(ByteString.copyFrom(new byte[] {(byte) 0xff})).build());
            assertStatus(peer.readFrame(TIMEOUT), 5, StatusCode.INTERNAL, "ttrpc: error unmarshalling payload");

            byte[] header = java.nio.ByteBuffer.allocate(Frames.HEADER_LENGTH)
                    .putInt(Frames.MAX_BODY_LENGTH + 10).putInt(7).put((byte) 1).put((byte) 0).array();
            peer.send(header).send(new byte[Frames.MAX_BODY_LENGTH + 10]);
            assertStatus(peer.readFrame(TIMEOUT), 7, StatusCode.RESOURCE_EXHAUSTED,
                    "message length 4194314 exceed maximum message size of 4194304");

            peer.sendFrame(9, 3, new byte[] {1, 2, 3});
            peer.sendRequest(11, echo);
            RawPeer.RawFrame answer = peer.readFrame(TIMEOUT);
            assertThat(answer.streamId()).isEqualTo(11);
            assertThat(StringValue.parseFrom(answer.response().getPayload()).getValue()).isEqualTo("ok");
        }
    }

    @Test
    void truncatedAndDroppedConnectionsLeaveTheServerServing() throws Exception {
        try (RawPeer peer = RawPeer.connect(socket)) {
            peer.send(new byte[] {0, 0, 0});
        }
        try (RawPeer peer = RawPeer.connect(socket)) {
            peer.send(java.nio.ByteBuffer.allocate(Frames.HEADER_LENGTH + 3)
                    .putInt(100).putInt(1).put((byte) 1).put((byte) 0).put(new byte[] {1, 2, 3}).array());
        }
        try (RawPeer peer = RawPeer.connect(socket)) {
            peer.send(java.nio.ByteBuffer.allocate(Frames.HEADER_LENGTH)
                    .putInt(Frames.MAX_BODY_LENGTH * 100).putInt(1).put((byte) 1).put((byte) 0).array());
            peer.send(new byte[1000]);
        }

        StepVerifier.create(echo(connect(), "alive")).expectNext("alive").verifyComplete();
    }

    @Test
    void aCallBeyondTheLimitIsRefusedAndAPeerThatLeavesItsCallsInProgressIsSeenToGo() throws Exception {
        // As many calls as a connection may have that never end (a Wait each): the server stopped reading, so the
        // next call (the Kill that would end them) waited for good, and so did the peer's close: the connection, its
        // descriptor and its calls stayed.
        Map<Integer, String> before = Leaks.openFds();
        try (RawPeer peer = RawPeer.connect(socket)) {
            byte[] never = Request.newBuilder().setService(SERVICE).setMethod("Never").build().toByteArray();
            ByteBuffer calls = ByteBuffer.allocate(TtrpcServer.MAX_CONCURRENT_CALLS * (Frames.HEADER_LENGTH
                    + never.length));
            for (int i = 0; i < TtrpcServer.MAX_CONCURRENT_CALLS; i++) {
                calls.putInt(never.length).putInt(2 * i + 1).put((byte) Frames.TYPE_REQUEST).put((byte) 0).put(never);
            }
            peer.send(calls.array());
            int oneTooMany = 2 * TtrpcServer.MAX_CONCURRENT_CALLS + 1;
            peer.sendRequest(oneTooMany, Request.newBuilder().setService(SERVICE).setMethod("Echo")
                    .setPayload(StringValue.of("one too many").toByteString()).build());

            assertStatus(peer.readFrame(TIMEOUT), oneTooMany, StatusCode.RESOURCE_EXHAUSTED,
                    "1024 calls are in progress on this connection already");
        }
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (server.connections() > 0 && System.nanoTime() - deadline < 0) {
            Thread.sleep(20);
        }
        assertThat(server.connections()).as("connections of a peer that left").isZero();
        TtrpcConnection connection = connect();
        StepVerifier.create(echo(connection, "after")).expectNext("after").verifyComplete();
        connection.disposeLater().block(TIMEOUT);
        assertThat(Leaks.fdsAddedSince(before, Duration.ofSeconds(5))).as("descriptors left open").isEmpty();
    }

    @Test
    void aPeerThatLeavesItsAnswersUnreadHasNoMoreOfItsCallsRead() throws Exception {
        // Answers left unread are held in memory: the server used to read on, and a peer that never read had up to
        // twice the limit of calls answered and held, 4 MiB each.
        AtomicInteger answered = new AtomicInteger();
        server.disposeNow(TIMEOUT);
        server = bind(TtrpcServer.create().service(TtrpcService.named("shimmer.test.Big").method("Echo",
                BytesValue.parser(), (call, request) -> Mono.fromSupplier(() -> {
                    answered.incrementAndGet();
                    return request;
                }))));
        byte[] call = Request.newBuilder().setService("shimmer.test.Big").setMethod("Echo")
                .setPayload(BytesValue.of(ByteString.copyFrom(new byte[1 << 20])).toByteString()).build().toByteArray();
        int calls = 64;
        Map<Integer, String> before = Leaks.openFds();
        RawPeer peer = RawPeer.connect(socket);
        CompletableFuture<Void> sent = CompletableFuture.runAsync(() -> {
            try {
                for (int i = 0; i < calls; i++) {
                    peer.sendFrame(2 * i + 1, Frames.TYPE_REQUEST, call);
                }
            } catch (IOException closed) {
                // Closed below, while the server no longer read.
            }
        });
        try {
            sent.get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException stillSending) {
            // Expected: the server stopped reading, the socket's buffers are full.
        }

        assertThat(sent).as("all calls sent to a server that should have stopped reading").isNotDone();
        assertThat(answered.get()).as("calls answered while the peer read no answer").isLessThan(8);
        peer.close();
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (server.connections() > 0 && System.nanoTime() - deadline < 0) {
            Thread.sleep(20);
        }
        assertThat(server.connections()).as("connections of a peer that left").isZero();
        sent.get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        assertThat(Leaks.fdsAddedSince(before, Duration.ofSeconds(5))).as("descriptors left open").isEmpty();
    }

    @Test
    void tenThousandRandomFramesNeitherHangNorCrashTheServer() throws Exception {
        TtrpcConnection bystander = connect();
        Random random = new Random(15257);
        for (int connection = 0; connection < 10; connection++) {
            try (RawPeer peer = RawPeer.connect(socket)) {
                java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
                for (int i = 0; i < 1000; i++) {
                    byte[] body = new byte[random.nextInt(48)];
                    random.nextBytes(body);
                    bytes.writeBytes(java.nio.ByteBuffer.allocate(Frames.HEADER_LENGTH)
                            .putInt(body.length).putInt(random.nextInt()).put((byte) random.nextInt(4))
                            .put((byte) random.nextInt()).array());
                    bytes.writeBytes(body);
                }
                peer.send(bytes.toByteArray());
                StepVerifier.create(echo(bystander, "during " + connection))
                        .expectNext("during " + connection).verifyComplete();
            }
        }

        StepVerifier.create(echo(connect(), "after")).expectNext("after").verifyComplete();
        bystander.dispose();
    }

    private static void expectStatus(Mono<?> call, StatusCode code, String message) {
        StepVerifier.create(call)
                .expectErrorSatisfies(e -> {
                    assertThat(e).isInstanceOf(TtrpcStatusException.class);
                    assertThat(((TtrpcStatusException) e).code()).isEqualTo(code);
                    assertThat(((TtrpcStatusException) e).statusMessage()).contains(message);
                })
                .verify(TIMEOUT);
    }

    private static void assertStatus(RawPeer.RawFrame frame, int streamId, StatusCode code, String message)
            throws IOException {
        assertThat(frame.streamId()).isEqualTo(streamId);
        assertThat(frame.type()).isEqualTo(Frames.TYPE_RESPONSE);
        assertThat(frame.response().getStatus().getCode()).isEqualTo(code.value());
        assertThat(frame.response().getStatus().getMessage()).contains(message);
    }
}
