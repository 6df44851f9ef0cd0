package org.shimmer.runtime.linux.sys;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.linux.testing.Leaks;

/** Issue 14: the command lines a bundle delete's scan reads, through one /proc descriptor and one native buffer. */
class ProcfsTest {

    @Test
    void commandLinesAreReadWholeOrMarkedLongerThanTheBufferAndLeaveNoDescriptor() throws Exception {
        // A command line longer than a page: the kernel hands it out a page at a time.
        String longArgument = "x".repeat(9000);
        Process sleeper = new ProcessBuilder("/bin/sh", "-c", "sleep 30", longArgument).start();
        Map<Integer, String> before = Leaks.openFds();
        try {
            byte[] expected = Files.readAllBytes(Path.of("/proc/" + sleeper.pid() + "/cmdline"));
            byte[] own = Files.readAllBytes(Path.of("/proc/self/cmdline"));
            try (Procfs.CommandLines lines = new Procfs.CommandLines(16 * 1024)) {
                byte[] buffer = new byte[16 * 1024];
                int length = lines.read((int) sleeper.pid(), buffer);
                assertThat(Arrays.copyOf(buffer, length)).isEqualTo(expected);
                assertThat(new String(buffer, 0, length, UTF_8)).startsWith("/bin/sh\0-c\0sleep 30\0xxx");

                length = lines.read((int) ProcessHandle.current().pid(), buffer);
                assertThat(Arrays.copyOf(buffer, length)).isEqualTo(own);

                // A smaller buffer is filled, and says the line may go on.
                byte[] small = new byte[4096];
                assertThat(lines.read((int) sleeper.pid(), small)).isEqualTo(-1);
                assertThat(small).isEqualTo(Arrays.copyOf(expected, 4096));
            }
            try (Procfs.CommandLines lines = new Procfs.CommandLines(100)) {
                byte[] bigger = new byte[4096];
                // The reader's capacity bounds what is read, whatever the caller's buffer.
                assertThat(lines.read((int) sleeper.pid(), bigger)).isEqualTo(-1);
                assertThat(Arrays.copyOf(bigger, 100)).isEqualTo(Arrays.copyOf(expected, 100));
            }
        } finally {
            sleeper.destroyForcibly().waitFor();
        }
        assertThat(Leaks.fdsAddedSince(before, Duration.ofSeconds(5))).isEmpty();
    }

    /**
     * The processes a scan skips are kthreadd and its children (kernel threads, and a user-mode helper the kernel
     * may be running): a process of ours or init is never among them, and every kernel thread is. Where pid 2 is not
     * kthreadd (a pid namespace), none is skipped.
     */
    @Test
    void kernelThreadsAreKthreaddAndItsChildrenAndNothingElse() throws Exception {
        Process child = new ProcessBuilder("/bin/sleep", "30").start();
        try {
            int[] kernel = Procfs.kernelThreads();
            assertThat(kernel).isSorted();
            if (!isKernelThread(2)) {
                assertThat(kernel).isEmpty();
                return;
            }
            assertThat(kernel).contains(2).doesNotContain(1, (int) ProcessHandle.current().pid(), (int) child.pid());
            for (int pid : kernel) {
                long parent = parentOf(pid);
                if (pid != 2 && parent >= 0) {
                    assertThat(parent).as("the parent of pid %d", pid).isEqualTo(2);
                }
            }
            // Every kernel thread there was before and is still there after is listed (kworkers come and go).
            int[] before = Arrays.stream(Procfs.pids()).filter(ProcfsTest::isKernelThread).toArray();
            int[] listed = Procfs.kernelThreads();
            int[] after = Arrays.stream(Procfs.pids()).filter(ProcfsTest::isKernelThread).toArray();
            assertThat(before).isNotEmpty();
            for (int pid : before) {
                if (Arrays.stream(after).anyMatch(again -> again == pid)) {
                    assertThat(listed).as("kernel thread %d", pid).contains(pid);
                }
            }
        } finally {
            child.destroyForcibly().waitFor();
        }
    }

    /**
     * The pids come from the bytes getdents64 wrote: every live process is listed (this JVM, a child that lives
     * throughout), and no entry of /proc that is not a pid ("self", "sys", ...).
     */
    @Test
    void pidsAreEveryNumberedEntryOfProcAndNothingElse() throws Exception {
        Process child = new ProcessBuilder("/bin/sleep", "30").start();
        Map<Integer, String> before = Leaks.openFds();
        try {
            int[] pids = Procfs.pids();
            assertThat(pids).contains(1, (int) ProcessHandle.current().pid(), (int) child.pid())
                    .doesNotHaveDuplicates();
            Set<Integer> listed = Arrays.stream(pids).boxed().collect(Collectors.toSet());
            try (Stream<Path> entries = Files.list(Path.of("/proc"))) {
                // Read after: a pid in this listing that is not in ours was born in between, or ours is wrong.
                Set<Integer> reference = entries.map(entry -> entry.getFileName().toString())
                        .filter(name -> name.chars().allMatch(Character::isDigit)).map(Integer::valueOf)
                        .collect(Collectors.toSet());
                assertThat(listed).allMatch(pid -> reference.contains(pid) || !Files.exists(Path.of("/proc/" + pid)));
            }
        } finally {
            child.destroyForcibly().waitFor();
        }
        assertThat(Leaks.fdsAddedSince(before, Duration.ofSeconds(5))).isEmpty();
    }

    /** Names that are not plain decimal numbers of an int are not numbers, whatever they start with. */
    @Test
    void numberedEntriesSkipEveryNameThatIsNotADecimalInt(@TempDir Path dir) throws Exception {
        for (String name : List.of("0", "7", "42", "2147483647", "2147483648", "99999999999", "12a", "a12", "-3",
                " 5", "1.5", "self", "0017")) {
            Files.createFile(dir.resolve(name));
        }
        // Enough entries that getdents64 needs more than one read of the buffer.
        for (int i = 0; i < 2000; i++) {
            Files.createFile(dir.resolve("n" + i + "-".repeat(20)));
        }
        int fd = LinuxCalls.open(dir, LinuxCalls.O_RDONLY | LinuxCalls.O_DIRECTORY | LinuxCalls.O_CLOEXEC);
        try {
            assertThat(LinuxCalls.numberedEntries(fd)).containsExactlyInAnyOrder(0, 7, 42, 2147483647, 17);
        } finally {
            LinuxCalls.close(fd);
        }
    }

    /** The ppid field of stat, read here independently of {@link Procfs}; -1 once it is gone. */
    private static long parentOf(int pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            return Long.parseLong(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[1]);
        } catch (java.io.IOException | RuntimeException gone) {
            return -1;
        }
    }

    /** PF_KTHREAD in the flags field of stat, read here independently of {@link Procfs}. */
    private static boolean isKernelThread(int pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return (Long.parseLong(fields[6]) & 0x00200000L) != 0;
        } catch (java.io.IOException | RuntimeException gone) {
            return false;
        }
    }

    @Test
    void aProcessThatIsGoneIsAnErrorNamingItsPid() throws Exception {
        Process done = new ProcessBuilder("/bin/true").start();
        done.waitFor();
        // Reaped by the JDK: the pid names nobody (until reused, which a quiet machine does not do at once).
        int pid = (int) done.pid();
        try (Procfs.CommandLines lines = new Procfs.CommandLines(4096)) {
            assertThatThrownBy(() -> lines.read(pid, new byte[4096]))
                    .isInstanceOf(LinuxCalls.ErrnoException.class)
                    .hasMessageContaining("/proc/" + pid + "/cmdline")
                    .satisfies(e -> assertThat(((LinuxCalls.ErrnoException) e).errno()).isEqualTo(LinuxCalls.ENOENT));
            // The reader goes on after a failure.
            byte[] buffer = new byte[4096];
            assertThat(lines.read((int) ProcessHandle.current().pid(), buffer)).isPositive();
        }
        // Closed twice: the second close touches nothing (the first arena close threw on a second).
        Procfs.CommandLines twice = new Procfs.CommandLines(64);
        twice.close();
        twice.close();
    }
}
