package org.shimmer.runtime.linux.cleanup;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.BundleInspection.ShimKind;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.MountTable;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.NettyLeakDetection;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.linux.testing.Zombies;
import org.shimmer.runtime.shim.CreateOptions;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TaskState;
import reactor.test.StepVerifier;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 9, findings 2 and 7: a bundle whose shim or container lives is never deleted from under it, and
 * {@code forceDelete} stops and removes everything of it; both shims, real runc, a read-only bind-mounted rootfs.
 */
@ExtendWith(NettyLeakDetection.class)
class BundleCleanupTest {

    static final Duration TIMEOUT = Duration.ofSeconds(30);
    static final String NS = "cleanup-test";
    static final Path SHIM = Path.of("containerd-shim-runc-v2");

    @TempDir
    Path temp;

    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private RuncOptions runc;
    private Path image;

    @BeforeEach
    void setUp() throws Exception {
        resources = new RuntimeResources("cleanup-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
        // A custom root: cleanup must find it from the launch record, not assume the default.
        runc = RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc").toString());
        image = Files.createDirectories(temp.resolve("image"));
        BusyboxBundle.writeRootfs(image);
    }

    @AfterEach
    void nothingIsLeft() throws Exception {
        try {
            assertNothingLeftUnder(temp);
        } finally {
            resources.close();
        }
    }

    private ShimOpt opt(ShimKind kind) {
        return kind == ShimKind.LOCAL ? ShimOpt.local()
                : ShimOpt.remote(SHIM, temp.resolve("daemon").toString(), null, false, null);
    }

    /**
     * A bundle named {@code name} and a suffix unique to this run: runc names the cgroup of a spec without
     * {@code cgroupsPath} after the id, and another class may run a container of the same name at the same time.
     */
    private Bundle bundle(String name, String... args) throws Exception {
        String id = name + "-" + UUID.randomUUID().toString().substring(0, 8);
        return runtime.create(NS, id, BusyboxBundle.spec(Files.createDirectories(temp.resolve("specs")), args))
                .block(TIMEOUT);
    }

    private ShimClient running(Bundle bundle, ShimKind kind) {
        ShimClient shim = bundle.newShimClient(opt(kind), runc).block(TIMEOUT);
        shim.create(new CreateOptions(List.of(Mount.readOnlyBind(image)), Stdio.none())).block(TIMEOUT);
        shim.start().block(TIMEOUT);
        return shim;
    }

    @ParameterizedTest
    @EnumSource(ShimKind.class)
    void deleteOfALiveBundleIsRefusedAndItStaysControllable(ShimKind kind) throws Exception {
        Bundle bundle = bundle("live-" + kind.name().toLowerCase(), "/bin/sleep", "60");
        ShimClient shim = running(bundle, kind);
        int pid = shim.state().block(TIMEOUT).pid();

        BundleInspection seen = runtime.inspect(NS, bundle.id()).block(TIMEOUT);
        assertThat(seen.complete()).isTrue();
        assertThat(seen.shim()).hasValueSatisfying(s -> {
            assertThat(s.kind()).isEqualTo(kind);
            assertThat(s.alive()).isTrue();
        });
        assertThat(seen.container()).hasValueSatisfying(c -> {
            assertThat(c.status()).isEqualTo("running");
            assertThat(c.pid()).isEqualTo(pid);
            assertThat(c.runtimeRoot()).isEqualTo(temp.resolve("runc"));
        });
        assertThat(seen.mounts()).contains(bundle.rootfs());
        assertThat(seen.inUse()).isTrue();
        assertThat(seen.describe()).isEqualTo("running");

        StepVerifier.create(bundle.delete()).expectErrorSatisfies(e -> assertThat(e)
                .isInstanceOf(FailedPreconditionException.class)
                .hasMessageContaining(NS + "/" + bundle.id()).hasMessageContaining("in use"))
                .verify(TIMEOUT);
        StepVerifier.create(runtime.delete(NS, bundle.id()))
                .expectError(FailedPreconditionException.class).verify(TIMEOUT);

        // Nothing was touched: the bundle loads, the container answers and ends normally.
        assertThat(runtime.load(NS, bundle.id()).block(TIMEOUT)).isEqualTo(bundle);
        assertThat(shim.state().block(TIMEOUT).status()).isEqualTo(TaskState.Status.RUNNING);
        try (Stream<Path> image = Files.list(bundle.rootfs())) {
            assertThat(image.count()).as("rootfs still mounted").isPositive();
        }
        shim.kill(9, false).block(TIMEOUT);
        assertThat(shim.awaitExit().block(TIMEOUT).status()).isEqualTo(137);
        shim.delete().block(TIMEOUT);
        shim.shutdown().block(TIMEOUT);
        runtime.delete(NS, bundle.id()).block(TIMEOUT);

        assertThat(Processes.awaitGone(pid, TIMEOUT)).isTrue();
        assertThat(runtime.inspect(NS, bundle.id()).block(TIMEOUT).present()).isFalse();
    }

    @ParameterizedTest
    @EnumSource(ShimKind.class)
    void forceDeleteStopsAndRemovesEverythingOfALiveBundle(ShimKind kind) throws Exception {
        Bundle bundle = bundle("force-" + kind.name().toLowerCase(), "/bin/sleep", "60");
        ShimClient shim = running(bundle, kind);
        int pid = shim.state().block(TIMEOUT).pid();
        BundleInspection before = runtime.inspect(NS, bundle.id()).block(TIMEOUT);
        int shimPid = before.shim().orElseThrow().pid();
        Path socket = kind == ShimKind.REMOTE ? socketOf(bundle) : null;

        runtime.forceDelete(NS, bundle.id()).block(TIMEOUT);

        assertThat(Processes.awaitGone(pid, TIMEOUT)).as("container init").isTrue();
        if (kind == ShimKind.REMOTE) {
            assertThat(Processes.awaitGone(shimPid, TIMEOUT)).as("shim").isTrue();
            assertThat(socket).doesNotExist();
        } else {
            assertThat(shimPid).as("a local shim is this JVM").isEqualTo(ProcessHandle.current().pid());
        }
        BundleInspection after = runtime.inspect(NS, bundle.id()).block(TIMEOUT);
        assertThat(after.present()).isFalse();
        assertThat(after.inUse()).isFalse();
        assertThat(after.mounts()).isEmpty();
        // Idempotent: nothing left is nothing to do.
        runtime.forceDelete(NS, bundle.id()).block(TIMEOUT);
    }

    @Test
    void forceDeleteOfABundleWithNothingAliveOrNoneAtAllJustDeletes() throws Exception {
        Bundle bundle = bundle("idle", "/bin/true");
        BundleInspection idle = runtime.inspect(NS, bundle.id()).block(TIMEOUT);
        assertThat(idle.present()).isTrue();
        assertThat(idle.inUse()).isFalse();
        assertThat(idle.describe()).isEqualTo("-");

        runtime.forceDelete(NS, bundle.id()).block(TIMEOUT);
        runtime.forceDelete(NS, "never-made").block(TIMEOUT);

        assertThat(runtime.inspect(NS, bundle.id()).block(TIMEOUT).present()).isFalse();
    }

    /**
     * A runtime whose state root is not the one its work root serves (a state root changed, the work root left at
     * its default) is refused a forced delete before it reads any record there: it read the other root's
     * {@code launch.json} of the same namespace and id and killed that container.
     */
    @Test
    void aForcedDeleteThroughAStateRootTheWorkRootDoesNotServeKillsNothing() throws Exception {
        Bundle bundle = bundle("owned", "/bin/sleep", "600");
        ShimClient shim = running(bundle, ShimKind.LOCAL);
        int pid = shim.state().block(TIMEOUT).pid();
        LinuxRuntime other = new LinuxRuntime(new RuntimeConfig(temp.resolve("other-state"), temp.resolve("work")),
                resources);

        StepVerifier.create(other.forceDelete(NS, bundle.id()))
                .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                        .hasMessageContaining("work root " + temp.resolve("work") + " serves state root "
                                + temp.resolve("state")))
                .verify(TIMEOUT);

        assertThat(Processes.isRunning(pid)).as("the first root's container").isTrue();
        assertThat(bundle.workDir()).exists();
        runtime.forceDelete(NS, bundle.id()).block(TIMEOUT);
        assertThat(Processes.awaitGone(pid, TIMEOUT)).isTrue();
    }

    /**
     * A delete cut short (a crash midway, a mount that appeared during its walk) can leave a mount in a hidden tree
     * of the id. The delete guard refuses it; inspect shows it, and forceDelete, the way out, detaches it. Both
     * once looked at the bundle and work directories only.
     */
    @Test
    void aMountInAHiddenTreeOfTheIdIsShownByInspectAndDetachedByForceDelete() throws Exception {
        Bundle bundle = bundle("hidden", "/bin/true");
        List<Path> mounted = new ArrayList<>();
        for (Path root : List.of(temp.resolve("state"), temp.resolve("work"))) {
            Path target = Files.createDirectories(root.resolve(NS).resolve("." + bundle.id() + ".deleting-"
                    + UUID.randomUUID()).resolve("rootfs"));
            LinuxCalls.mount("tmpfs", target.toString(), "tmpfs", 0, "size=1m");
            mounted.add(target);
        }
        Path other = Files.createDirectories(temp.resolve("state").resolve(NS).resolve("." + bundle.id()
                + "x.deleting-" + UUID.randomUUID()));
        try {
            assertThat(runtime.inspect(NS, bundle.id()).block(TIMEOUT).mounts())
                    .containsExactlyInAnyOrderElementsOf(mounted);
            StepVerifier.create(runtime.delete(NS, bundle.id()))
                    .expectErrorSatisfies(e -> assertThat(e).isInstanceOf(FailedPreconditionException.class)
                            .hasMessageContaining("is in use"))
                    .verify(TIMEOUT);

            runtime.forceDelete(NS, bundle.id()).block(TIMEOUT);

            assertThat(MountTable.under(List.of(temp))).isEmpty();
            assertThat(runtime.inspect(NS, bundle.id()).block(TIMEOUT).present()).isFalse();
            assertThat(other).as("another id's tree").exists();
        } finally {
            for (Path target : mounted) {
                if (!MountTable.under(List.of(target)).isEmpty()) {
                    LinuxCalls.umount2(target.toString(), LinuxCalls.MNT_DETACH);
                }
            }
            Files.deleteIfExists(other);
        }
    }

    @Test
    void forceDeleteRemovesNoSocketOutsideTheShimSocketDirectory() throws Exception {
        // The bundle's address file only names a path: it must never make a forced delete remove a socket that
        // is not a shim's (another service's, here a stand-in in the test's directory).
        Bundle bundle = bundle("stray-address", "/bin/true");
        Path foreign = temp.resolve("service.sock");
        try (ServerSocketChannel service = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            service.bind(UnixDomainSocketAddress.of(foreign));
            Files.writeString(bundle.path().resolve("address"), "unix://" + foreign);

            runtime.forceDelete(NS, bundle.id()).block(TIMEOUT);

            assertThat(foreign).as("a socket we did not make").exists();
            assertThat(runtime.inspect(NS, bundle.id()).block(TIMEOUT).present()).isFalse();
        }
    }

    static Path socketOf(Bundle bundle) throws IOException {
        return Path.of(Files.readString(bundle.path().resolve("address")).strip().substring("unix://".length()));
    }

    /** No mount, bundle, work dir or runc container under {@code temp}. */
    static void assertNothingLeftUnder(Path temp) throws IOException, InterruptedException {
        assertThat(MountTable.under(List.of(temp))).as("mounts left").isEmpty();
        // What a forced delete killed and the JVM had adopted is reaped, never left a zombie.
        assertThat(Zombies.awaitNone(Duration.ofSeconds(10))).as("zombie children of the JVM").isEmpty();
        for (Path root : List.of(temp.resolve("state").resolve(NS), temp.resolve("work").resolve(NS),
                temp.resolve("runc").resolve(NS), temp.resolve("state/.shimmer/runc").resolve(NS))) {
            if (Files.isDirectory(root)) {
                try (Stream<Path> left = Files.list(root)) {
                    assertThat(left).as("left in " + root).isEmpty();
                }
            }
        }
    }
}
