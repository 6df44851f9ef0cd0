package org.shimmer.runtime.linux.runc;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.linux.testing.Zombies;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;

/** {@link CreatedStart} against the real runc: what runc says of the container at every point of the start. */
class CreatedStartTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(20);
    private static final String NAMESPACE = "created-start-test";
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path temp;

    private Scheduler io;
    private Runc runc;
    private String id;
    private int initPid;

    @BeforeEach
    void setUp() {
        io = Schedulers.newBoundedElastic(2, 100, "created-start-io");
    }

    @AfterEach
    void tearDown() throws Exception {
        if (runc != null) {
            runc.delete(id, true).onErrorComplete().block(TIMEOUT);
        }
        // Orphaned by runc create, init is this JVM's child when the JVM is a subreaper (other tests make it one),
        // and a zombie here once killed, whichever way the test went.
        if (initPid != 0 && Processes.awaitGone(initPid, TIMEOUT)
                && Zombies.parentOf(initPid) == ProcessHandle.current().pid()) {
            LinuxCalls.waitPid(initPid, LinuxCalls.WEXITED);
        }
        io.dispose();
    }

    /**
     * Once init may run its program, runc already calls the container running. The FIFO's name was removed only
     * after our reader was open: a JVM stalled there (or killed there) let the program run while runc said
     * "created", for good once the JVM was gone; the CLI's killed-run test saw it under load, and a delete without
     * force of that "created" container kills it.
     */
    @Test
    void runcCallsTheContainerRunningBeforeItsProgramCanRun() throws Exception {
        id = "c-" + UUID.randomUUID().toString().substring(0, 8);
        Path bundle = BusyboxBundle.write(temp.resolve(id), "/bin/sh", "-c", "echo ran > /ran; exec sleep 60");
        ObjectNode spec = (ObjectNode) JSON.readTree(bundle.resolve("config.json").toFile());
        ((ObjectNode) spec.get("root")).put("readonly", false);
        JSON.writeValue(bundle.resolve("config.json").toFile(), spec);
        runc = new Runc(RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc-root").toString()), NAMESPACE,
                bundle, io);
        int pid = runc.create(id, bundle.resolve("init.pid"), Runc.Stdio.NULL).block(TIMEOUT);
        initPid = pid;
        Path ran = bundle.resolve("rootfs/ran");
        AtomicReference<String> statusOnceItRan = new AtomicReference<>();

        boolean started = CreatedStart.start(runc.root().resolve(id), pid, () -> {
            // The JVM stalls here, where a kill would leave the container: its program runs meanwhile.
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            while (!wrote(ran) && System.nanoTime() < deadline) {
                Thread.onSpinWait();
            }
            statusOnceItRan.set(runc.state(id).block(TIMEOUT).path("status").asText());
        });

        assertThat(started).as("started in the JVM").isTrue();
        assertThat(wrote(ran)).as("the program wrote " + ran).isTrue();
        assertThat(statusOnceItRan).as("runc's status once the program ran").hasValue("running");
        assertThat(runc.state(id).block(TIMEOUT).path("status").asText()).isEqualTo("running");
        runc.kill(id, 9, false).block(TIMEOUT);
        assertThat(Processes.awaitGone(pid, TIMEOUT)).as("init %d killed", pid).isTrue();
    }

    private static boolean wrote(Path file) {
        try {
            return Files.readString(file).equals("ran\n");
        } catch (IOException notYet) {
            return false;
        }
    }
}
