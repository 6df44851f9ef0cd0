package org.shimmer.runtime.linux.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/** What tests need to know of processes outside the JVM. */
public final class Processes {

    private Processes() {}

    /**
     * SIGSTOP to {@code pid}, then waits until every one of its threads is stopped. kill(1) returns once the signal
     * is queued; a thread of a busy shim that had not taken it yet still read and ran a Shutdown sent right after,
     * and the "stopped" shim exited under a test (CI, with the other test JVM loading both cores).
     */
    public static void stop(long pid) throws IOException, InterruptedException {
        run(null, "kill", "-STOP", Long.toString(pid));
        Path tasks = Path.of("/proc", Long.toString(pid), "task");
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (true) {
            boolean allStopped;
            try (var threads = Files.list(tasks)) {
                allStopped = threads.allMatch(thread -> state(thread.resolve("stat")) == 'T');
            }
            if (allStopped) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("pid " + pid + " did not stop within 10 s");
            }
            Thread.sleep(1);
        }
    }

    /** The state letter of a {@code stat} file; 'X' for one gone. */
    private static char state(Path stat) {
        try {
            String text = Files.readString(stat);
            return text.charAt(text.lastIndexOf(')') + 2);
        } catch (IOException gone) {
            return 'X';
        }
    }

    /** Whether {@code pid} runs: it exists and is not a zombie waiting to be reaped by someone else. */
    public static boolean isRunning(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            // The state follows the parenthesised command name, which may itself hold spaces or parentheses.
            char state = stat.charAt(stat.lastIndexOf(')') + 2);
            return state != 'Z' && state != 'X';
        } catch (IOException gone) {
            return false;
        }
    }

    /**
     * Whether {@code pid} runs {@code name} (its command after exec) and leads its terminal's foreground process
     * group: a Ctrl-C typed now is its. A shell's job is there, and counted in the container, as soon as the shell
     * forked it; it makes itself the foreground (tcsetpgrp) only after that, and a Ctrl-C before goes to the shell,
     * which keeps it until the job ends.
     */
    public static boolean leadsTheForeground(long pid, String name) {
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            String comm = stat.substring(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
            // After "(comm) ": state ppid pgrp session tty_nr tpgid.
            String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return comm.equals(name) && fields[2].equals(Long.toString(pid)) && fields[5].equals(fields[2]);
        } catch (IOException | RuntimeException gone) {
            return false;
        }
    }

    /**
     * What {@code pid} is now, for a failure message: its state letter, a zombie's wait status (field 52 of
     * {@code stat}: the signal that killed it in the low bits), or gone (reaped already).
     */
    public static String describe(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            // After the name: state is field 3 of stat, exit_code field 52.
            String state = fields[0];
            return state.equals("Z") && fields.length >= 50
                    ? "a zombie, wait status 0x" + Integer.toHexString(Integer.parseInt(fields[49].strip()))
                    : "state " + state;
        } catch (IOException gone) {
            return "gone";
        } catch (RuntimeException unreadable) {
            return "unreadable: " + unreadable;
        }
    }

    /** Waits until {@code pid} no longer runs; false if it still does after the timeout. */
    public static boolean awaitGone(long pid, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (isRunning(pid)) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(10);
        }
        return true;
    }

    /** Runs a command to completion and returns its stdout; fails with its output on a non-zero exit. */
    public static String run(Path cwd, String... command) throws IOException, InterruptedException {
        ProcessBuilder builder = new ProcessBuilder(command).redirectInput(ProcessBuilder.Redirect.from(
                Path.of("/dev/null").toFile()));
        if (cwd != null) {
            builder.directory(cwd.toFile());
        }
        Process process = builder.start();
        byte[] stderr;
        String stdout = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        stderr = process.getErrorStream().readAllBytes();
        int exit = process.waitFor();
        if (exit != 0) {
            throw new IOException(String.join(" ", command) + " exited " + exit + ": " + stdout
                    + new String(stderr, StandardCharsets.UTF_8));
        }
        return stdout;
    }

    /**
     * Waits until no process (a shim: its command line names the daemon socket under a test's temp dir) mentions
     * {@code text}; kills those left at the deadline and fails naming them.
     */
    public static void awaitNoneMentioning(String text, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        List<ProcessHandle> left;
        while (!(left = ProcessHandle.allProcesses()
                .filter(process -> process.info().commandLine().orElse("").contains(text)).toList()).isEmpty()) {
            if (System.nanoTime() > deadline) {
                left.forEach(ProcessHandle::destroyForcibly);
                throw new AssertionError("processes left: " + left.stream()
                        .map(process -> process.pid() + " " + process.info().commandLine().orElse("")).toList());
            }
            Thread.sleep(10);
        }
    }
}
