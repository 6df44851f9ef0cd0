package org.shimmer.runtime.linux.spec;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.linux.LinuxRuntime;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Leaks;
import org.shimmer.runtime.spec.Capabilities;
import org.shimmer.runtime.spec.Spec;
import reactor.test.StepVerifier;

/** runc itself, no shim, runs the bundle {@code create(ns, id, Spec)} wrote, its JSON unchanged. */
class SpecRuncTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NS = "spec-test";

    @TempDir
    Path temp;

    private RuntimeResources resources;
    private LinuxRuntime runtime;
    private Path runcRoot;

    @BeforeEach
    void start() {
        resources = new RuntimeResources("spec-test-");
        runtime = new LinuxRuntime(new RuntimeConfig(temp.resolve("state"), temp.resolve("work")), resources);
        runcRoot = temp.resolve("runc");
    }

    @AfterEach
    void nothingLeft() throws Exception {
        assertThat(Leaks.runcContainers(runcRoot)).as("runc containers left").isEmpty();
        resources.close();
        CgroupsLeft.assertNoneUnder(temp.resolve("state"), NS);
    }

    /** Runs the bundle with {@code runc run} in the foreground; returns its exit code and output. */
    private String[] runcRun(Bundle bundle) throws Exception {
        Process runc = new ProcessBuilder("runc", "--root", runcRoot.toString(), "run", "--bundle",
                bundle.path().toString(), bundle.id()).redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile())).start();
        String output = new String(runc.getInputStream().readAllBytes(), UTF_8);
        assertThat(runc.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(Leaks.awaitNoProcessesOf(bundle.path(), bundle.id(), TIMEOUT)).as("processes left").isEmpty();
        return new String[] {Integer.toString(runc.exitValue()), output};
    }

    private Bundle create(Spec spec) throws Exception {
        String id = "s-" + UUID.randomUUID().toString().substring(0, 8);
        Bundle bundle = runtime.create(NS, id, spec).block(TIMEOUT);
        BusyboxBundle.writeRootfs(bundle.rootfs());
        return bundle;
    }

    @Test
    void runcRunsTheDefaultSpecUnchangedAndItIsConfinedInside() throws Exception {
        Bundle bundle = create(Spec.builder().args("/bin/busybox", "sh", "-c",
                "/bin/busybox grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd):' /proc/self/status; id; pwd").build());
        byte[] written = Files.readAllBytes(bundle.configFile());

        String[] run = runcRun(bundle);

        assertThat(run[0]).as(run[1]).isEqualTo("0");
        String mask = String.format("%016x", Capabilities.mask(Capabilities.DEFAULT_SET));
        assertThat(run[1]).contains("Seccomp:\t2", "NoNewPrivs:\t1", "CapEff:\t" + mask, "CapBnd:\t" + mask,
                "uid=0 gid=0", "\n/\n");
        assertThat(Files.readAllBytes(bundle.configFile())).isEqualTo(written);
        runtime.delete(NS, bundle.id()).block(TIMEOUT);
    }

    @Test
    void aSyscallTheProfileDeniesFailsWithEpermButRunsUnconfined() throws Exception {
        // unshare(CLONE_NEWUSER) needs no capability: only the seccomp profile refuses it.
        Spec spec = Spec.builder().args("/bin/busybox", "unshare", "-U", "/bin/busybox", "true").build();
        Bundle confined = create(spec);
        Bundle unconfined = create(spec.toBuilder().seccompUnconfined().build());

        String[] denied = runcRun(confined);
        String[] allowed = runcRun(unconfined);

        assertThat(denied[0]).as(denied[1]).isNotEqualTo("0");
        assertThat(denied[1]).contains("Operation not permitted");
        assertThat(allowed[0]).as(allowed[1]).isEqualTo("0");
        runtime.delete(NS, confined.id()).block(TIMEOUT);
        runtime.delete(NS, unconfined.id()).block(TIMEOUT);
    }

    @Test
    void nothingIsWrittenForANullSpec() {
        StepVerifier.create(runtime.create(NS, "nothing", (Spec) null))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOf(InvalidSpecException.class)
                        .hasMessageContaining(NS + "/nothing"))
                .verify(TIMEOUT);
        assertThat(temp.resolve("state").resolve(NS).resolve("nothing")).doesNotExist();
    }
}
