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

    /** What runc refused at create in its own words ("error setting rlimit type 7: operation not permitted"). */
    @Test
    void openFilesAboveNrOpenAreRefusedAtCreateNamingTheLimitAndNothingIsWritten() throws Exception {
        long nrOpen;
        try (var in = Files.newInputStream(Path.of("/proc/sys/fs/nr_open"))) {
            nrOpen = Long.parseLong(new String(in.readNBytes(64), UTF_8).strip());
        }

        refusedAtCreate("too-many-files", Spec.builder().args("/bin/busybox", "true")
                .rlimit("RLIMIT_NOFILE", 1024, nrOpen + 1).build(), "process.rlimits.hard", nrOpen + 1 + "");

        // At the most this runtime may give (its own hard limit, without CAP_SYS_RESOURCE) it runs.
        long most = Math.min(nrOpen, Files.readAllLines(Path.of("/proc/self/limits")).stream()
                .filter(line -> line.startsWith("Max open files "))
                .mapToLong(line -> Long.parseLong(line.substring(15).strip().split(" +")[1])).findFirst()
                .orElseThrow());
        Bundle bundle = create(Spec.builder().args("/bin/busybox", "sh", "-c", "ulimit -n")
                .rlimit("RLIMIT_NOFILE", most, most).build());
        String[] run = runcRun(bundle);
        assertThat(run[0]).as(run[1]).isEqualTo("0");
        assertThat(run[1]).contains(Long.toString(most));
        runtime.delete(NS, bundle.id()).block(TIMEOUT);
    }

    /** runc refused it at create: "cpuset.cpus: numerical result out of range". */
    @Test
    void aCpusetNamingACpuTheHostLacksIsRefusedAtCreateNamingTheCpuAndNothingIsWritten() throws Exception {
        // Past any kernel's NR_CPUS.
        refusedAtCreate("no-such-cpu", Spec.builder().args("/bin/busybox", "true")
                .resources(Spec.Resources.builder().cpusetCpus("0,9000000").build()).build(),
                "linux.resources.cpu.cpus", "CPU 9000000");
        refusedAtCreate("past-the-last", Spec.builder().args("/bin/busybox", "true")
                .resources(Spec.Resources.builder().cpusetCpus("0-9999").build()).build(),
                "linux.resources.cpu.cpus", "0-9999");

        // CPU 0 every host has.
        Bundle bundle = create(Spec.builder().args("/bin/busybox", "true")
                .resources(Spec.Resources.builder().cpusetCpus("0").build()).build());
        String[] run = runcRun(bundle);
        assertThat(run[0]).as(run[1]).isEqualTo("0");
        runtime.delete(NS, bundle.id()).block(TIMEOUT);
    }

    private void refusedAtCreate(String id, Spec spec, String field, String named) {
        StepVerifier.create(runtime.create(NS, id, spec))
                .expectErrorSatisfies(error -> assertThat(error).isInstanceOfSatisfying(InvalidSpecException.class,
                        invalid -> {
                            assertThat(invalid.field()).isEqualTo(field);
                            assertThat(invalid.getMessage()).contains(named);
                        }))
                .verify(TIMEOUT);
        assertThat(temp.resolve("state").resolve(NS).resolve(id)).doesNotExist();
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
