package org.shimmer.runtime.linux.bundle;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.shimmer.runtime.linux.testing.ErrorCodes.code;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.ResourceExhaustedException;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;
import reactor.test.StepVerifier;

/**
 * Issue 9 finding 8 for bundles: a full disk is a {@link ResourceExhaustedException} that says "no space left",
 * names the bundle and the path and keeps the system's error as the cause; the failed create leaves nothing, and
 * the same create works once space is freed. Real tmpfs mounts, 64 KiB or three inodes.
 */
class BundleDiskFullTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final byte[] SMALL_SPEC = "{\"ociVersion\":\"1.0.2\"}".getBytes(UTF_8);

    @TempDir
    Path temp;

    private Path stateRoot;
    private Path workRoot;
    private Scheduler io;
    private BundleStore store;

    @BeforeEach
    void setUp() throws IOException {
        stateRoot = Files.createDirectories(temp.resolve("state"));
        workRoot = Files.createDirectories(temp.resolve("work"));
        io = Schedulers.newBoundedElastic(2, 100, "disk-full-io");
        store = new BundleStore(new RuntimeConfig(stateRoot, workRoot), io, ShimFactory.NONE);
    }

    @AfterEach
    void tearDown() throws IOException {
        try {
            TestTrees.unmountAllUnder(temp);
        } finally {
            io.dispose();
        }
        TestTrees.assertNoMountsUnder(temp);
        TestTrees.assertNoDescriptorsUnder(temp);
    }

    @Test
    void aSpecThatDoesNotFitOnTheStateRootIsResourceExhaustedAndLeavesNothing() throws Exception {
        TestTrees.tmpfs(stateRoot, "size=64k");
        Path filler = stateRoot.resolve("filler");
        Files.write(filler, new byte[40 * 1024]);
        byte[] spec = spec(32 * 1024);

        StepVerifier.create(store.create("ns", "c1", spec))
                .expectErrorSatisfies(e -> {
                    assertThat(e).isInstanceOf(ResourceExhaustedException.class).has(code(ErrorCode.RESOURCE_EXHAUSTED))
                            .hasMessageContaining("failed to create bundle ns/c1 at "
                                    + stateRoot.resolve("ns/c1/.config.json.partial"))
                            .hasMessageContaining("no space left")
                            .hasCauseInstanceOf(IOException.class);
                    assertThat(e.getCause()).hasMessageContaining(LinuxCalls.strerror(LinuxCalls.ENOSPC));
                    assertThat(StorageErrors.errno(e.getCause())).isEqualTo(LinuxCalls.ENOSPC);
                })
                .verify(TIMEOUT);

        assertThat(names(stateRoot.resolve("ns"))).isEmpty();
        assertThat(names(workRoot.resolve("ns"))).isEmpty();

        Files.delete(filler);
        Bundle bundle = store.create("ns", "c1", spec).block(TIMEOUT);
        assertThat(bundle.configFile()).hasBinaryContent(spec);
        StepVerifier.create(bundle.delete()).verifyComplete();
        assertThat(names(stateRoot.resolve("ns"))).isEmpty();
    }

    @Test
    void aWorkRootWithoutInodesLeftIsResourceExhaustedAndTheBundleDirIsRolledBack() throws Exception {
        // Three inodes: the root, the namespace directory and one more.
        TestTrees.tmpfs(workRoot, "size=64k,nr_inodes=3");
        Path filler = Files.createDirectories(workRoot.resolve("ns/filler"));

        StepVerifier.create(store.create("ns", "c1", SMALL_SPEC))
                .expectErrorSatisfies(e -> {
                    assertThat(e).isInstanceOf(ResourceExhaustedException.class).has(code(ErrorCode.RESOURCE_EXHAUSTED))
                            .hasMessageContaining("failed to create bundle ns/c1 at " + workRoot.resolve("ns/c1"))
                            .hasMessageContaining("no space left");
                    assertThat(StorageErrors.errno(e.getCause())).isEqualTo(LinuxCalls.ENOSPC);
                })
                .verify(TIMEOUT);

        assertThat(names(stateRoot.resolve("ns"))).isEmpty();
        assertThat(names(workRoot.resolve("ns"))).containsExactly("filler");

        Files.delete(filler);
        Bundle bundle = store.create("ns", "c1", SMALL_SPEC).block(TIMEOUT);
        StepVerifier.create(bundle.delete()).verifyComplete();
        assertThat(names(workRoot.resolve("ns"))).isEmpty();
    }

    @Test
    void deleteWorksOnAFullDisk() throws Exception {
        TestTrees.tmpfs(stateRoot, "size=64k");
        Bundle bundle = store.create("ns", "c1", SMALL_SPEC).block(TIMEOUT);
        Files.write(bundle.rootfs().resolve("data"), new byte[16 * 1024]);
        fill(stateRoot.resolve("filler"));

        StepVerifier.create(bundle.delete()).verifyComplete();

        assertThat(names(stateRoot.resolve("ns"))).isEmpty();
        assertThat(names(workRoot.resolve("ns"))).isEmpty();
    }

    @Test
    void aNamespaceThatIsNotADirectoryFailsListTyped() throws Exception {
        Files.writeString(stateRoot.resolve("ns"), "not a directory");

        StepVerifier.create(store.list("ns"))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                        .has(code(ErrorCode.FAILED_PRECONDITION))
                        .hasMessageContaining("failed to list bundles of ns")
                        .hasMessageContaining(stateRoot.resolve("ns").toString()))
                .verify(TIMEOUT);
    }

    /** A JSON object of {@code size} bytes. */
    private static byte[] spec(int size) {
        String prefix = "{\"pad\":\"";
        return (prefix + "x".repeat(size - prefix.length() - 2) + "\"}").getBytes(UTF_8);
    }

    /** Writes to {@code file} until the file system is full. */
    private static void fill(Path file) throws IOException {
        try {
            Files.write(file, new byte[1024 * 1024]);
        } catch (IOException full) {
            assertThat(StorageErrors.errno(full)).isEqualTo(LinuxCalls.ENOSPC);
            return;
        }
        throw new AssertionError("1 MiB fitted on a 64 KiB tmpfs");
    }

    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
