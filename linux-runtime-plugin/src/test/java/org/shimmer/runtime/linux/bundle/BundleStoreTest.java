package org.shimmer.runtime.linux.bundle;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.shimmer.runtime.linux.testing.ErrorCodes.code;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.InvalidIdentifierException;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.bundle.BundleStore.CreateStep;
import reactor.core.publisher.Flux;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;
import reactor.test.StepVerifier;

class BundleStoreTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String IO_PREFIX = "bundle-test-io";
    private static final byte[] SPEC = "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"}}".getBytes(UTF_8);

    @TempDir
    Path temp;

    private Path stateRoot;
    private Path workRoot;
    private Scheduler io;
    private BundleStore store;

    @BeforeEach
    void setUp() {
        stateRoot = temp.resolve("state");
        workRoot = temp.resolve("work");
        io = Schedulers.newBoundedElastic(8, 10_000, IO_PREFIX);
        store = new BundleStore(new RuntimeConfig(stateRoot, workRoot), io, ShimFactory.NONE);
    }

    @AfterEach
    void tearDown() {
        io.dispose();
    }

    @Test
    void createLaysOutTheBundle() throws IOException {
        Bundle bundle = store.create("ns", "c1", SPEC).block(TIMEOUT);

        assertThat(bundle.id()).isEqualTo("c1");
        assertThat(bundle.namespace()).isEqualTo("ns");
        assertThat(bundle.path()).isEqualTo(stateRoot.resolve("ns/c1"));
        assertThat(bundle.workDir()).isEqualTo(workRoot.resolve("ns/c1"));
        assertThat(Files.readAllBytes(bundle.configFile())).isEqualTo(SPEC);
        for (Path dir : List.of(bundle.path(), bundle.rootfs(), bundle.workDir())) {
            assertThat(mode(dir)).as(dir.toString()).isEqualTo("rwx--x--x");
        }
        assertThat(mode(bundle.configFile())).isEqualTo("rw-------");
        try (Stream<Path> entries = Files.list(bundle.path())) {
            assertThat(entries.map(p -> p.getFileName().toString())).containsExactlyInAnyOrder("rootfs", "config.json");
        }
    }

    @Test
    void specBytesAreKeptUnchanged() throws IOException {
        byte[] spec = "  {\n  \"ociVersion\" : \"1.0.2\" ,\"x\":[1,2,{}]}\n\n".getBytes(UTF_8);

        Bundle bundle = store.create("ns", "c1", spec).block(TIMEOUT);

        assertThat(Files.readAllBytes(bundle.configFile())).isEqualTo(spec);
    }

    @ParameterizedTest
    @ValueSource(strings = {"../x", "a/b", ".hidden", "", "..", "a..b", "-a", "a b"})
    void invalidIdsAreRefusedWithoutTouchingDisk(String bad) {
        String tooLong = "a".repeat(77);
        for (String[] call : new String[][] {{"ns", bad}, {bad, "c1"}, {"ns", tooLong}, {tooLong, "c1"}}) {
            String value = call[0].equals("ns") ? call[1] : call[0];
            StepVerifier.create(store.create(call[0], call[1], SPEC))
                    .expectErrorSatisfies(e -> assertThat(e)
                            .isInstanceOf(InvalidIdentifierException.class).has(code(ErrorCode.INVALID_ARGUMENT))
                            .hasMessageContaining("\"" + value + "\""))
                    .verify(TIMEOUT);
            StepVerifier.create(store.load(call[0], call[1]))
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidIdentifierException.class)
                            .has(code(ErrorCode.INVALID_ARGUMENT))).verify(TIMEOUT);
            StepVerifier.create(store.delete(call[0], call[1]))
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidIdentifierException.class)
                            .has(code(ErrorCode.INVALID_ARGUMENT))).verify(TIMEOUT);
        }
        StepVerifier.create(store.list(bad))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidIdentifierException.class)
                        .has(code(ErrorCode.INVALID_ARGUMENT))).verify(TIMEOUT);
        assertThat(stateRoot).doesNotExist();
        assertThat(workRoot).doesNotExist();
    }

    @Test
    void nullIdIsRefusedWithoutTouchingDisk() {
        StepVerifier.create(store.create("ns", null, SPEC))
                .expectErrorSatisfies(e -> assertThat(e)
                        .isInstanceOf(InvalidIdentifierException.class).has(code(ErrorCode.INVALID_ARGUMENT))
                        .hasMessage("invalid id null: must not be empty"))
                .verify(TIMEOUT);
        assertThat(stateRoot).doesNotExist();
    }

    @ParameterizedTest
    @ValueSource(strings = {"", " ", "[]", "42", "\"spec\"", "null", "{", "{\"a\":1} {}", "{\"a\":1,\"a\":2}", "{'a':1}",
            "\u0000"})
    void invalidSpecsAreRefusedWithoutTouchingDisk(String spec) {
        StepVerifier.create(store.create("ns", "c1", spec.getBytes(UTF_8)))
                .expectErrorSatisfies(e -> assertThat(e)
                        .isInstanceOf(InvalidSpecException.class).has(code(ErrorCode.INVALID_ARGUMENT))
                        .hasMessageStartingWith("invalid spec for ns/c1: "))
                .verify(TIMEOUT);
        assertThat(stateRoot).doesNotExist();
        assertThat(workRoot).doesNotExist();
    }

    @Test
    void nullSpecIsRefused() {
        StepVerifier.create(store.create("ns", "c1", null))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(InvalidSpecException.class)
                        .has(code(ErrorCode.INVALID_ARGUMENT))).verify(TIMEOUT);
        assertThat(stateRoot).doesNotExist();
    }

    @Test
    void existingIdFailsAndTheExistingBundleIsUntouched() throws IOException {
        Bundle first = store.create("ns", "c1", SPEC).block(TIMEOUT);
        Files.writeString(first.workDir().resolve("shim.pid"), "42");
        Files.writeString(first.rootfs().resolve("data"), "kept");

        StepVerifier.create(store.create("ns", "c1", "{\"other\":true}".getBytes(UTF_8)))
                .expectErrorSatisfies(e -> assertThat(e)
                        .isInstanceOf(AlreadyExistsException.class).has(code(ErrorCode.ALREADY_EXISTS))
                        .hasMessageContaining("ns/c1 already exists"))
                .verify(TIMEOUT);

        assertThat(Files.readAllBytes(first.configFile())).isEqualTo(SPEC);
        assertThat(first.workDir().resolve("shim.pid")).hasContent("42");
        assertThat(first.rootfs().resolve("data")).hasContent("kept");
    }

    @Test
    void existingWorkDirIsNeverReusedNorRemoved_containerd2605() throws IOException {
        Path workDir = Files.createDirectories(workRoot.resolve("ns/c1"));
        Files.writeString(workDir.resolve("running-container-state"), "precious");

        StepVerifier.create(store.create("ns", "c1", SPEC))
                .expectErrorSatisfies(e -> assertThat(e)
                        .isInstanceOf(AlreadyExistsException.class).has(code(ErrorCode.ALREADY_EXISTS))
                        .hasMessageContaining("work directory " + workDir))
                .verify(TIMEOUT);

        assertThat(workDir.resolve("running-container-state")).hasContent("precious");
        assertThat(stateRoot.resolve("ns/c1")).doesNotExist();
    }

    @ParameterizedTest
    @EnumSource(CreateStep.class)
    void failureAfterAnyStepRollsBackExactlyWhatWasCreated(CreateStep failing) throws IOException {
        Files.createDirectories(stateRoot.resolve("ns/other"));
        Files.createDirectories(workRoot.resolve("ns/other"));
        Set<String> threads = ConcurrentHashMap.newKeySet();
        BundleStore failingStore = new BundleStore(new RuntimeConfig(stateRoot, workRoot), io, ShimFactory.NONE, (step, path) -> {
            threads.add(Thread.currentThread().getName());
            if (step == failing) {
                throw new IOException("injected failure after " + step);
            }
        });

        StepVerifier.create(failingStore.create("ns", "c1", SPEC))
                .expectErrorSatisfies(e -> assertThat(e)
                        .isInstanceOf(UnavailableException.class).has(code(ErrorCode.UNAVAILABLE))
                        .hasMessageContaining("failed to create bundle ns/c1")
                        .hasMessageContaining("injected failure after " + failing)
                        .hasRootCauseMessage("injected failure after " + failing))
                .verify(TIMEOUT);

        assertThat(names(stateRoot.resolve("ns"))).containsExactly("other");
        assertThat(names(workRoot.resolve("ns"))).containsExactly("other");
        assertThat(threads).allSatisfy(name -> assertThat(name).startsWith(IO_PREFIX));
        StepVerifier.create(store.create("ns", "c1", SPEC).map(Bundle::id)).expectNext("c1").verifyComplete();
    }

    @Test
    void unusableStateRootFailsNamingThePathAndLeavesNothing() throws IOException {
        Files.writeString(stateRoot, "not a directory");

        StepVerifier.create(store.create("ns", "c1", SPEC))
                .expectErrorSatisfies(e -> assertThat(e)
                        .isInstanceOf(FailedPreconditionException.class).has(code(ErrorCode.FAILED_PRECONDITION))
                        .hasMessageContaining("failed to create bundle ns/c1")
                        .hasMessageContaining(stateRoot.toString())
                        .hasMessageEndingWith(stateRoot.resolve("ns") + ": Not a directory")
                        .hasCauseInstanceOf(FileSystemException.class))
                .verify(TIMEOUT);

        assertThat(stateRoot).isRegularFile().hasContent("not a directory");
        assertThat(workRoot).doesNotExist();
    }

    @Test
    void unusableWorkRootRollsBackTheBundleDir() throws IOException {
        Files.createDirectories(workRoot.getParent());
        Files.writeString(workRoot, "not a directory");

        StepVerifier.create(store.create("ns", "c1", SPEC))
                .expectErrorSatisfies(e -> assertThat(e)
                        .isInstanceOf(FailedPreconditionException.class).has(code(ErrorCode.FAILED_PRECONDITION))
                        .hasMessageContaining(workRoot.toString()))
                .verify(TIMEOUT);

        assertThat(stateRoot.resolve("ns/c1")).doesNotExist();
        assertThat(workRoot).isRegularFile();
    }

    @Test
    void loadFindsCompleteBundlesOnly() throws IOException {
        store.create("ns", "c1", SPEC).block(TIMEOUT);
        Files.createDirectories(stateRoot.resolve("ns/half-made/rootfs"));

        StepVerifier.create(store.load("ns", "c1").map(Bundle::path))
                .expectNext(stateRoot.resolve("ns/c1")).verifyComplete();
        for (String missing : List.of("half-made", "absent")) {
            StepVerifier.create(store.load("ns", missing))
                    .expectErrorSatisfies(e -> assertThat(e)
                            .isInstanceOf(NotFoundException.class).has(code(ErrorCode.NOT_FOUND))
                            .hasMessageContaining("bundle ns/" + missing + " not found"))
                    .verify(TIMEOUT);
        }
        StepVerifier.create(store.load("other-ns", "c1"))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(NotFoundException.class)
                        .has(code(ErrorCode.NOT_FOUND))).verify(TIMEOUT);
    }

    @Test
    void listReturnsValidCompleteBundlesOnly() throws IOException {
        store.create("ns", "a", SPEC).block(TIMEOUT);
        store.create("ns", "b", SPEC).block(TIMEOUT);
        store.create("other", "c", SPEC).block(TIMEOUT);
        Path ns = stateRoot.resolve("ns");
        Files.createDirectories(ns.resolve("half-made/rootfs"));
        Files.createDirectories(ns.resolve(".a.deleting-1234"));
        Files.write(ns.resolve(".a.deleting-1234/config.json"), SPEC);
        Files.createDirectories(ns.resolve("bad..name"));
        Files.write(ns.resolve("bad..name/config.json"), SPEC);
        Files.write(ns.resolve("plain-file"), SPEC);
        Files.createSymbolicLink(ns.resolve("link"), ns.resolve("a"));
        Files.createDirectories(ns.resolve("config-is-dir/config.json"));

        StepVerifier.create(store.list("ns").map(Bundle::id).collectSortedList())
                .expectNext(List.of("a", "b")).verifyComplete();
        StepVerifier.create(store.list("unknown")).verifyComplete();
    }

    @Test
    void listIsDemandDrivenAndReadsOnTheIoScheduler() {
        for (int i = 0; i < 10; i++) {
            store.create("ns", "c" + i, SPEC).block(TIMEOUT);
        }
        Set<String> threads = ConcurrentHashMap.newKeySet();

        StepVerifier.create(store.list("ns").doOnNext(b -> threads.add(Thread.currentThread().getName())), 3)
                .expectNextCount(3)
                .thenRequest(7)
                .expectNextCount(7)
                .verifyComplete();
        assertThat(threads).isNotEmpty().allSatisfy(name -> assertThat(name).startsWith(IO_PREFIX));
    }

    @Test
    void deleteRemovesBothDirectoriesAndIsIdempotent() {
        Bundle bundle = store.create("ns", "c1", SPEC).block(TIMEOUT);

        StepVerifier.create(bundle.delete()).verifyComplete();
        StepVerifier.create(bundle.delete()).verifyComplete();
        StepVerifier.create(store.delete("ns", "never-created")).verifyComplete();
        StepVerifier.create(store.delete("never-a-namespace", "c1")).verifyComplete();

        assertThat(bundle.path()).doesNotExist();
        assertThat(bundle.workDir()).doesNotExist();
        assertThat(names(stateRoot.resolve("ns"))).isEmpty();
        assertThat(names(workRoot.resolve("ns"))).isEmpty();
    }

    @Test
    void deleteCleansUpAHalfMadeBundle() throws IOException {
        Files.createDirectories(stateRoot.resolve("ns/c1/rootfs"));

        StepVerifier.create(store.delete("ns", "c1")).verifyComplete();

        assertThat(stateRoot.resolve("ns/c1")).doesNotExist();
    }

    @Test
    void deleteFinishesWhatACrashedDeleteLeft() throws IOException {
        Bundle bundle = store.create("ns", "c1", SPEC).block(TIMEOUT);
        // What a crash between the rename and the removal leaves: hidden trees, invisible to load and list.
        Files.move(bundle.path(), stateRoot.resolve("ns/.c1.deleting-" + UUID.randomUUID()));
        Files.move(bundle.workDir(), workRoot.resolve("ns/.c1.deleting-" + UUID.randomUUID()));
        StepVerifier.create(store.load("ns", "c1"))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(NotFoundException.class)
                        .has(code(ErrorCode.NOT_FOUND))).verify(TIMEOUT);
        // Not listed: a list would remove them itself (BundleDeleteStopTest).

        StepVerifier.create(store.delete("ns", "c1")).verifyComplete();

        assertThat(names(stateRoot.resolve("ns"))).isEmpty();
        assertThat(names(workRoot.resolve("ns"))).isEmpty();
    }

    @Test
    void deleteWithMountsUnderBothDirectoriesIsRefusedBeforeAnythingChanges() throws Exception {
        Bundle bundle = store.create("ns", "c1", SPEC).block(TIMEOUT);
        Path workMount = Files.createDirectory(bundle.workDir().resolve("mnt"));
        try {
            TestTrees.tmpfs(bundle.rootfs(), "size=1m");
            TestTrees.tmpfs(workMount, "size=1m");
            Files.writeString(bundle.rootfs().resolve("image-file"), "must survive");

            StepVerifier.create(bundle.delete())
                    .expectErrorSatisfies(e -> assertThat(e)
                            .isInstanceOf(FailedPreconditionException.class).has(code(ErrorCode.FAILED_PRECONDITION))
                            .hasMessageContaining("bundle ns/c1 is in use: " + bundle.rootfs())
                            .hasMessageContaining("its bundle directory " + bundle.path()))
                    .verify(TIMEOUT);

            assertThat(names(stateRoot.resolve("ns"))).containsExactly("c1");
            assertThat(names(workRoot.resolve("ns"))).containsExactly("c1");
            assertThat(bundle.rootfs().resolve("image-file")).hasContent("must survive");
            StepVerifier.create(store.load("ns", "c1")).expectNext(bundle).verifyComplete();

            TestTrees.unmountAllUnder(bundle.rootfs());
            StepVerifier.create(bundle.delete())
                    .expectErrorSatisfies(e -> assertThat(e)
                            .isInstanceOf(FailedPreconditionException.class).has(code(ErrorCode.FAILED_PRECONDITION))
                            .hasMessageContaining("bundle ns/c1 is in use: " + workMount)
                            .hasMessageContaining("its work directory " + bundle.workDir()))
                    .verify(TIMEOUT);
            assertThat(names(bundle.workDir())).containsExactly("mnt");
        } finally {
            TestTrees.unmountAllUnder(temp);
        }

        StepVerifier.create(store.delete("ns", "c1")).verifyComplete();
        assertThat(names(stateRoot.resolve("ns"))).isEmpty();
        assertThat(names(workRoot.resolve("ns"))).isEmpty();
        TestTrees.assertNoMountsUnder(temp);
    }

    @Test
    void hundredConcurrentCreatesOfDistinctIdsAllSucceed() {
        StepVerifier.create(Flux.range(0, 100)
                        .flatMap(i -> store.create("ns", "c" + i, SPEC), 100)
                        .count())
                .expectNext(100L).verifyComplete();

        StepVerifier.create(store.list("ns").count()).expectNext(100L).verifyComplete();
        assertThat(names(workRoot.resolve("ns"))).hasSize(100);
    }

    @Test
    void concurrentCreatesOfOneIdHaveExactlyOneWinnerAndNoResidue() {
        List<Object> outcomes = Flux.range(0, 20)
                .flatMap(i -> store.create("ns", "same", ("{\"n\":" + i + "}").getBytes(UTF_8))
                        .<Object>map(Bundle::id)
                        .onErrorResume(e -> reactor.core.publisher.Mono.just(e)), 20)
                .collectList()
                .block(TIMEOUT);

        assertThat(outcomes).filteredOn("same"::equals).hasSize(1);
        assertThat(outcomes).filteredOn(o -> !"same".equals(o)).hasSize(19)
                .allSatisfy(o -> assertThat(o).isInstanceOf(AlreadyExistsException.class)
                        .has(code(ErrorCode.ALREADY_EXISTS)));
        assertThat(names(stateRoot.resolve("ns"))).containsExactly("same");
        assertThat(names(workRoot.resolve("ns"))).containsExactly("same");
        assertThat(names(stateRoot.resolve("ns/same"))).containsExactlyInAnyOrder("rootfs", "config.json");
    }

    private static String mode(Path path) throws IOException {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(path));
    }

    private static List<String> names(Path dir) {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.map(p -> p.getFileName().toString()).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
