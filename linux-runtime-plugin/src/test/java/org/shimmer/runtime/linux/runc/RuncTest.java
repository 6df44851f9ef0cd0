package org.shimmer.runtime.linux.runc;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.testing.BusyboxBundle;
import org.shimmer.runtime.linux.testing.Processes;
import org.shimmer.runtime.linux.testing.Zombies;
import reactor.core.Disposable;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;

/** {@link Runc} against the real runc: a cancelled command leaves no process and no zombie behind. */
class RuncTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(20);
    private static final String NAMESPACE = "runc-test";
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path temp;

    private Scheduler io;
    private final List<Long> started = new ArrayList<>();

    @BeforeAll
    static void inheritOrphans() throws IOException {
        // The hard case: a subreaper JVM inherits whatever a killed runc leaves, and nothing reaps an inherited
        // namespace init. (The runtime makes the JVM one at its first local container anyway.)
        LinuxCalls.becomeChildSubreaper();
    }

    @BeforeEach
    void setUp() {
        io = Schedulers.newBoundedElastic(4, 100, "runc-test-io");
    }

    @AfterEach
    void tearDown() {
        // A failed assertion must not leave the tree running for the next test.
        started.forEach(pid -> ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly));
        io.dispose();
    }

    @Test
    void aCancelledCreateKillsRuncItsInitAndItsHookAndReapsThemAll() throws Exception {
        // A unique id: runc names the container's cgroup after it, and other suites may run at the same time.
        String id = "c-" + UUID.randomUUID().toString().substring(0, 8);
        Path bundle = BusyboxBundle.write(temp.resolve(id), "/bin/true");
        Path hookPid = temp.resolve("hook.pid");
        String cgroup = "/shimmer-runc-test-" + id;
        ObjectNode spec = (ObjectNode) JSON.readTree(bundle.resolve("config.json").toFile());
        ((ObjectNode) spec.get("linux")).put("cgroupsPath", cgroup);
        // runc create runs prestart hooks itself, with its runc init waiting in the new namespaces: a hook that
        // hangs holds the create at the point where runc has the most children.
        ObjectNode hook = spec.putObject("hooks").putArray("prestart").addObject();
        hook.put("path", "/bin/sh");
        hook.putArray("args").add("sh").add("-c").add("echo $$ > " + hookPid + ".new && mv " + hookPid + ".new "
                + hookPid + " && exec sleep 600");
        JSON.writeValue(bundle.resolve("config.json").toFile(), spec);
        Path root = temp.resolve("runc-root");
        Runc runc = new Runc(RuncOptions.defaults().withRuntimeRoot(root.toString()), NAMESPACE, bundle, io);

        Disposable create = runc.create(id, bundle.resolve("init.pid"), Runc.Stdio.NULL)
                .subscribe(pid -> {}, error -> {});
        long hookProcess = awaitPid(hookPid);
        // The pid file is there once mv renamed it: mv may not have exited yet, nor the hook's shell become sleep.
        awaitCommand(hookProcess, "sleep");
        long runcProcess = Zombies.parentOf(hookProcess);
        List<Long> tree = Stream.concat(Stream.of(runcProcess),
                ProcessHandle.of(runcProcess).orElseThrow().descendants().map(ProcessHandle::pid)).toList();
        started.addAll(tree);
        assertThat(tree.stream().map(RuncTest::command))
                .as("runc, its init (held by runc, a subreaper) and the hook")
                .contains("runc", "runc:[2:INIT]", "sleep");

        long cancelled = System.nanoTime();
        create.dispose();

        for (long pid : tree) {
            assertThat(awaitReaped(pid)).as("pid %d (%s) killed and reaped", pid, command(pid)).isTrue();
        }
        System.out.println("cancelled runc create: " + tree.size() + " processes killed and reaped in "
                + Duration.ofNanos(System.nanoTime() - cancelled).toMillis() + " ms");
        assertThat(Zombies.ofThisJvm()).doesNotContainAnyElementsOf(tree.stream().map(Long::intValue).toList());
        // What the cancelled create made on disk is runc's to delete, as after any killed create.
        removeLeftovers(root, id, cgroup);
    }

    @Test
    void aCancelledCommandKillsItsWholeTreeAndReapsIt() throws Exception {
        Path bundle = BusyboxBundle.write(temp.resolve("bundle"), "/bin/true");
        Path wrapperPid = temp.resolve("wrapper.pid");
        // Slow runc: a wrapper that forks a sleep (a child runc did not make itself), waits for it, then runs runc.
        Path wrapper = Files.writeString(temp.resolve("slow-runc"), "#!/bin/sh\n"
                + "echo $$ > " + wrapperPid + ".new && mv " + wrapperPid + ".new " + wrapperPid + "\n"
                + "sleep 600\nexec runc \"$@\"\n");
        Files.setPosixFilePermissions(wrapper, PosixFilePermissions.fromString("rwx------"));
        Runc runc = new Runc(RuncOptions.defaults().withRuntimeRoot(temp.resolve("runc-root").toString())
                .withBinaryName(wrapper.toString()), NAMESPACE, bundle, io);

        Disposable start = runc.start("never-created").subscribe(done -> {}, error -> {});
        long shell = awaitPid(wrapperPid);
        // Its first child may still be the mv that wrote the pid file; the sleep comes once that one was reaped.
        long sleep = awaitChild(shell, "sleep");
        started.addAll(List.of(shell, sleep));

        start.dispose();

        assertThat(awaitReaped(shell)).as("the wrapper killed and reaped").isTrue();
        assertThat(awaitReaped(sleep)).as("its sleep killed and reaped").isTrue();
        assertThat(Zombies.ofThisJvm()).doesNotContain((int) shell, (int) sleep);
    }

    private static long awaitPid(Path file) throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!Files.exists(file)) {
            assertThat(System.nanoTime()).as(file + " written in time").isLessThan(deadline);
            Thread.sleep(10);
        }
        return Long.parseLong(Files.readString(file).strip());
    }

    /** The first child of {@code pid} running {@code name}, once there is one. */
    private static long awaitChild(long pid, String name) throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (true) {
            List<Long> children = ProcessHandle.of(pid).orElseThrow().children().map(ProcessHandle::pid)
                    .filter(child -> command(child).equals(name)).toList();
            if (!children.isEmpty()) {
                return children.getFirst();
            }
            assertThat(System.nanoTime()).as("pid %d forked %s in time", pid, name).isLessThan(deadline);
            Thread.sleep(10);
        }
    }

    /** Waits until {@code pid} runs {@code name} (a shell's exec of it). */
    private static void awaitCommand(long pid, String name) throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!command(pid).equals(name)) {
            assertThat(System.nanoTime()).as("pid %d (%s) became %s in time", pid, command(pid), name)
                    .isLessThan(deadline);
            Thread.sleep(10);
        }
    }

    /** Gone from {@code /proc}: not running and not a zombie either (someone reaped it). */
    private static boolean awaitReaped(long pid) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (Files.exists(Path.of("/proc", Long.toString(pid)))) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(10);
        }
        return true;
    }

    private static String command(long pid) {
        try {
            return Files.readString(Path.of("/proc", Long.toString(pid), "comm")).strip();
        } catch (IOException gone) {
            return "gone";
        }
    }

    /** runc's state for the container and its cgroup, which must hold no process any more. */
    private static void removeLeftovers(Path root, String id, String cgroup) throws Exception {
        Process delete = new ProcessBuilder("runc", "--root", root.resolve(NAMESPACE).toString(), "delete", "--force",
                id).redirectErrorStream(true).start();
        String said = new String(delete.getInputStream().readAllBytes()).strip();
        delete.waitFor();
        System.out.println("runc delete --force after the cancelled create: " + said);
        Path state = root.resolve(NAMESPACE).resolve(id);
        if (Files.exists(state)) {
            System.out.println("left in runc's state directory: " + Processes.run(null, "ls", "-a", state.toString()));
            Processes.run(null, "rm", "-rf", state.toString());
        }
        List<Path> groups = new ArrayList<>(List.of(Path.of("/sys/fs/cgroup" + cgroup)));
        try (Stream<Path> controllers = Files.list(Path.of("/sys/fs/cgroup"))) {
            controllers.filter(Files::isDirectory).forEach(dir -> groups.add(Path.of(dir + cgroup)));
        }
        for (Path group : groups) {
            if (Files.isDirectory(group)) {
                assertThat(Files.readString(group.resolve("cgroup.procs")).strip()).as(group + " empty").isEmpty();
                Files.delete(group);
            }
        }
    }
}
