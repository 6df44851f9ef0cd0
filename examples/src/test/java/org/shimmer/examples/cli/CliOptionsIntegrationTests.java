package org.shimmer.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.examples.host.BusyboxRootfs;
import org.shimmer.examples.host.StateRootCgroups;

/**
 * The options and exit statuses of issue 13's CLI, and its paper cuts, as a user meets them: real plugin zip through
 * PF4J, real runc, the real shim; no terminal (the terminal mode has tests of its own).
 */
class CliOptionsIntegrationTests {

    private static final List<String> SHIMS = List.of("local", "remote");

    @TempDir
    Path temp;

    private Path rootfs;
    private List<String> global;
    private Map<String, String> environment = Map.of();

    /** What one command printed and returned. */
    private record Outcome(int status, String out, String err) {}

    @BeforeEach
    void setUp() throws IOException {
        rootfs = BusyboxRootfs.write(temp.resolve("rootfs"));
        Files.writeString(rootfs.resolve("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n"
                + "app:x:1234:2345:app:/home/app:/bin/sh\n");
        Files.writeString(rootfs.resolve("etc/group"), "root:x:0:\nstaff:x:50:app\n");
        global = List.of("--plugins", System.getProperty("shimmer.plugins.dir", "target/plugins"),
                "--state-root", temp.resolve("state").toString(), "--work-root", temp.resolve("work").toString());
    }

    /** A fresh state root per test: its typed-spec containers' empty parent cgroups go with it. */
    @AfterEach
    void removeTheStateRootsEmptyCgroups() throws IOException {
        StateRootCgroups.removeEmptyAndListLeft(temp.resolve("state"));
    }

    private Outcome cli(String... args) {
        return cli(InputStream.nullInputStream(), args);
    }

    private Outcome cli(InputStream in, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        List<String> all = new ArrayList<>(global);
        all.addAll(List.of(args));
        int status = new ShimmerCli(in, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8)).withEnvironment(environment)
                .execute(all.toArray(String[]::new));
        return new Outcome(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /** {@code run --rm} of {@code script} in {@code sh -c} through {@code shim} with {@code options}. */
    private Outcome sh(String shim, List<String> options, String script) {
        List<String> args = new ArrayList<>(List.of("run", "--rm", "--shim", shim, "--rootfs", rootfs.toString()));
        args.addAll(options);
        args.addAll(List.of("c-" + shim, "/bin/sh", "-c", script));
        return cli(args.toArray(String[]::new));
    }

    @Test
    void stdinReachesTheContainerWithInteractiveAndIsNotReadWithout() throws Exception {
        for (String shim : SHIMS) {
            Outcome echoed = cli(new ByteArrayInputStream("hi\nthere\n".getBytes(StandardCharsets.UTF_8)), "run",
                    "-i", "--rm", "--shim", shim, "--rootfs", rootfs.toString(), "cat-" + shim, "cat");

            assertThat(echoed.status()).as(shim + ": " + echoed.err()).isZero();
            assertThat(echoed.out()).as(shim).isEqualTo("hi\nthere\n");

            AtomicInteger reads = new AtomicInteger();
            InputStream watched = new ByteArrayInputStream("unread\n".getBytes(StandardCharsets.UTF_8)) {
                @Override
                public synchronized int read(byte[] bytes, int offset, int length) {
                    reads.incrementAndGet();
                    return super.read(bytes, offset, length);
                }
            };
            Outcome without = cli(watched, "run", "--rm", "--shim", shim, "--rootfs", rootfs.toString(),
                    "nocat-" + shim, "cat");

            assertThat(without.status()).as(shim + ": " + without.err()).isZero();
            assertThat(without.out()).as(shim + ": cat read end of input").isEmpty();
            assertThat(reads).as(shim + ": our stdin was not read").hasValue(0);
        }
        assertNothingLeft();
    }

    @Test
    void environmentComesFromEnvOptionsAndAnEnvFileAsDockerReadsThem() throws Exception {
        environment = Map.of("FROM_HOST", "host value", "ALSO_HOST", "also");
        Path file = Files.writeString(temp.resolve("app.env"), """
                # a comment, then a blank line

                FILE_VAR=from file = with spaces
                FROM_HOST
                NOT_OURS
                REPLACED=by the file
                """);
        for (String shim : SHIMS) {
            Outcome outcome = sh(shim, List.of("--env-file", file.toString(), "-e", "A=1", "-e", "ALSO_HOST",
                    "-e", "REPLACED=by -e", "--env", "EMPTY="),
                    "echo \"$A|$ALSO_HOST|$FROM_HOST|$FILE_VAR|$REPLACED|${EMPTY-unset}|${NOT_OURS-unset}\"");

            assertThat(outcome.status()).as(shim + ": " + outcome.err()).isZero();
            assertThat(outcome.out()).as(shim)
                    .isEqualTo("1|also|host value|from file = with spaces|by -e||unset\n");
        }
        assertThat(cli("run", "--rm", "--rootfs", rootfs.toString(), "--env-file", temp.resolve("none").toString(),
                "x", "true").err()).isEqualTo("shimmer: env file " + temp.resolve("none") + " does not exist\n");
        assertNothingLeft();
    }

    @Test
    void mountsUserCwdHostnameAndReadOnlyRootAreWhatTheContainerSees() throws Exception {
        Path data = Files.createDirectories(temp.resolve("data"));
        Files.writeString(data.resolve("file"), "host data\n");
        Path scratch = Files.createDirectories(temp.resolve("scratch"));
        for (String shim : SHIMS) {
            Outcome readonly = sh(shim, List.of("--mount", "type=bind,src=" + data + ",dst=/data,ro"),
                    "cat /data/file; echo x > /data/new && echo wrote || echo refused");
            assertThat(readonly.status()).as(shim + ": " + readonly.err()).isZero();
            assertThat(readonly.out()).as(shim).isEqualTo("host data\nrefused\n");

            Outcome writable = sh(shim, List.of("--mount", "source=" + scratch + ",target=/scratch"),
                    "echo via " + shim + " > /scratch/" + shim);
            assertThat(writable.status()).as(shim + ": " + writable.err()).isZero();
            assertThat(scratch.resolve(shim)).hasContent("via " + shim);

            Outcome identity = sh(shim, List.of("--user", "app", "--cwd", "/tmp", "--hostname", "box-" + shim),
                    "/bin/busybox id -u; /bin/busybox id -g; pwd; hostname");
            assertThat(identity.status()).as(shim + ": " + identity.err()).isZero();
            assertThat(identity.out()).as(shim).isEqualTo("1234\n2345\n/tmp\nbox-" + shim + "\n");

            Outcome numeric = sh(shim, List.of("-u", "77:staff", "-w", "/etc"),
                    "/bin/busybox id -u; /bin/busybox id -g; pwd");
            assertThat(numeric.out()).as(shim + ": " + numeric.err()).isEqualTo("77\n50\n/etc\n");

            Outcome readOnlyRoot = sh(shim, List.of("--read-only"),
                    "echo x > /new && echo wrote || echo refused; echo y > /tmp/new && echo wrote tmp");
            assertThat(readOnlyRoot.out()).as(shim + ": " + readOnlyRoot.err()).isEqualTo("refused\n");
        }
        assertThat(scratch.resolve("local")).exists();
        assertThat(data).isDirectoryNotContaining(path -> path.getFileName().toString().equals("new"));
        assertThat(cli("run", "--rm", "--user", "nobody", "--rootfs", rootfs.toString(), "x", "true").err())
                .isEqualTo("shimmer: user nobody not found in " + rootfs.resolve("etc/passwd") + "\n");
        assertNothingLeft();
    }

    @Test
    void memoryCpusAndPidsLimitsAreTheContainersCgroupLimits() throws Exception {
        // The container's own cgroup files: cgroup v1 (this box's) binds each controller's directory, v2 shows the
        // hierarchy, the container's directory at its /proc/self/cgroup path.
        String limits = "c=/sys/fs/cgroup; if [ -d $c/memory ]; then echo \"$(cat $c/memory/memory.limit_in_bytes)"
                + " $(cat $c/cpu/cpu.cfs_quota_us) $(cat $c/cpu/cpu.cfs_period_us) $(cat $c/pids/pids.max)\";"
                + " else read line < /proc/self/cgroup; d=$c${line#0::}; [ -f $d/memory.max ] || d=$c;"
                + " echo \"$(cat $d/memory.max) $(cat $d/cpu.max) $(cat $d/pids.max)\"; fi";
        for (String shim : SHIMS) {
            Outcome outcome = sh(shim, List.of("--memory", "64m", "--cpus", "0.5", "--pids-limit", "42"), limits);

            assertThat(outcome.status()).as(shim + ": " + outcome.err()).isZero();
            assertThat(outcome.out()).as(shim).isEqualTo("67108864 50000 100000 42\n");
        }
        assertNothingLeft();
    }

    @Test
    void exitStatusesAreDockers() throws Exception {
        Path plain = Files.writeString(rootfs.resolve("plain"), "not a program\n");
        Files.setPosixFilePermissions(plain, PosixFilePermissions.fromString("rw-r--r--"));
        for (String shim : SHIMS) {
            assertThat(sh(shim, List.of(), "exit 7").status()).as(shim).isEqualTo(7);
            assertStatus(cli("run", "--rm", "--shim", shim, "--rootfs", rootfs.toString(), "dir-" + shim, "/etc"),
                    126, "/etc");
            assertStatus(cli("run", "--rm", "--shim", shim, "--rootfs", rootfs.toString(), "plain-" + shim,
                    "/plain"), 126, "/plain");
            assertStatus(cli("run", "--rm", "--shim", shim, "--rootfs", rootfs.toString(), "none-" + shim,
                    "nosuchcmd"), 127, "nosuchcmd");
        }
        assertStatus(cli("run", "--frobnicate", "--rootfs", rootfs.toString(), "x", "true"), 125,
                "Unknown option: '--frobnicate'");
        assertStatus(cli("kill", "nope"), 125, "bundle default/nope not found");
        assertStatus(cli("exec", "nope", "true"), 125, "bundle default/nope not found");
        assertStatus(cli("run", "--memory", "lots", "--rootfs", rootfs.toString(), "x", "true"), 125, "'lots'");
        assertStatus(cli("run", "--mount", "type=bind,src=/tmp,dst=/x,rw=yes", "--rootfs", rootfs.toString(), "x",
                "true"), 125, "unknown key 'rw'");
        assertNothingLeft();
    }

    @Test
    void killTakesSignalNamesAndOptionsAfterTheIdAndRefusesUnknownOnes() throws Exception {
        for (String signal : List.of("KILL", "9")) {
            // Issue 13: "kill d1 -s 9" was accepted and did nothing.
            Outcome started = cli("run", "-d", "--rootfs", rootfs.toString(), "d1", "/bin/sleep", "60");
            assertThat(started.out()).as(started.err()).isEqualTo("d1\n");

            assertStatus(cli("kill", "d1", "--foo"), 125, "Unknown option: '--foo'");
            assertStatus(cli("kill", "-s", "NOSUCH", "d1"), 125, "invalid signal NOSUCH");
            assertThat(cli("ps").out()).as(signal).containsPattern("d1 +running +\\d+");
            Outcome killed = signal.equals("9") ? cli("kill", "d1", "-s", signal) : cli("kill", "--signal", signal,
                    "d1");
            assertThat(killed.status()).as(signal + ": " + killed.err()).isZero();

            awaitStopped("d1");
            assertThat(cli("delete", "d1").status()).isZero();
        }
        assertNothingLeft();
    }

    @Test
    void execRunsDockersFormWithItsOptions() throws Exception {
        assertThat(cli("run", "-d", "-e", "FOO=bar", "-w", "/tmp", "--rootfs", rootfs.toString(), "bg", "/bin/sleep",
                "60").status()).isZero();

        Outcome docker = cli(new ByteArrayInputStream("typed\n".getBytes(StandardCharsets.UTF_8)), "exec", "-i",
                "-e", "K=v", "-u", "app", "-w", "/", "bg", "/bin/sh", "-c",
                "read line; echo \"$line $K $(/bin/busybox id -u) $(pwd)\"; exit 4");
        assertThat(docker.status()).as(docker.err()).isEqualTo(4);
        assertThat(docker.out()).isEqualTo("typed v 1234 /\n");
        // The container's own environment and directory, as docker exec inherits them.
        Outcome inherited = cli("exec", "bg", "sh", "-c", "echo $FOO; pwd");
        assertThat(inherited.out()).as(inherited.err()).isEqualTo("bar\n/tmp\n");

        Outcome named = cli("exec", "--exec-id", "mine", "bg", "--", "echo", "named");
        assertThat(named.out()).as(named.err()).isEqualTo("named\n");
        // No old form "exec ID EXEC_ID -- CMD": "--" after the first word is the command's own.
        Outcome dashes = cli("exec", "bg", "echo", "--", "hi");
        assertThat(dashes.out()).as(dashes.err()).isEqualTo("-- hi\n");
        assertStatus(cli("exec", "bg", "nosuchcmd"), 127, "nosuchcmd");
        // A failed exec is deleted from the shim: its name is free again.
        assertStatus(cli("exec", "--exec-id", "x", "bg", "nosuchcmd"), 127, "nosuchcmd");
        Outcome again = cli("exec", "--exec-id", "x", "bg", "true");
        assertThat(again.status()).as(again.err()).isZero();
        // Options go before the ID, for exec as for run.
        assertStatus(cli("exec", "bg", "-u", "app", "id"), 125,
                "-u comes after the ID bg, where it would be the container's command: options go before the ID");
        assertStatus(cli("exec", "bg", "-it", "sh"), 125, "-it comes after the ID bg");

        assertThat(cli("delete", "-f", "bg").status()).isZero();
        assertNothingLeft();
    }

    @Test
    void paperCutsOfANewUserHaveClearOneLineAnswers() throws Exception {
        Path file = Files.writeString(temp.resolve("a-file"), "");
        assertStatus(cli("run", "--rootfs", file.toString(), "x", "true"), 125,
                "rootfs " + file + " is not a directory");
        assertStatus(cli("run", "--rootfs", rootfs.toString(), "x", "--rm", "true"), 125,
                "--rm comes after the ID x, where it would be the container's command: options go before the ID");
        assertStatus(cli("run", "--rootfs", rootfs.toString(), "x", "-m", "64m", "true"), 125,
                "-m comes after the ID x");
        assertStatus(cli("run", "--rootfs", rootfs.toString(), "x", "-id", "true"), 125,
                "-id comes after the ID x");
        assertStatus(cli("run", "--rootfs", rootfs.toString(), "x", "--memory=64m", "true"), 125,
                "--memory=64m comes after the ID x");
        // Neither a bad id nor a value with a newline splits the answer over lines.
        assertStatus(cli("run", "--rootfs", rootfs.toString(), "a\nb", "--rm", "true"), 125,
                "invalid id \"a\\nb\"");
        assertStatus(cli("exec", "a\nb", "-it", "sh"), 125, "invalid id \"a\\nb\"");
        assertStatus(cli("run", "--rootfs", rootfs.toString(), "x", "--env=A\nB", "true"), 125,
                "\"--env=A\\nB\" comes after the ID x");
        assertStatus(cli("run", "-d", "--shim", "local", "--rootfs", rootfs.toString(), "x", "true"), 125,
                "--detach needs --shim remote");
        assertStatus(cli("run", "-d", "-i", "--rootfs", rootfs.toString(), "x", "true"), 125,
                "-i and --detach do not go together");
        assertStatus(cli("frobnicate"), 125, "unknown command frobnicate");
        // Refused before anything is printed: no table header above the error.
        Outcome ps = cli("--namespace", "../x", "ps");
        assertStatus(ps, 125, "invalid namespace \"../x\"");
        assertThat(ps.out()).isEmpty();
        assertStatus(cli(), 125, "missing COMMAND");
        // Words after the ID are the command's own, options included; "--" is still accepted before it.
        assertThat(cli("run", "--rm", "--rootfs", rootfs.toString(), "x", "--", "echo", "--rm", "-d").out())
                .isEqualTo("--rm -d\n");
        assertNothingLeft();
    }

    @Test
    void everyCommandHasHelpListingItsOptions() {
        Map<List<String>, List<String>> commands = Map.of(
                List.of(), List.of("--state-root", "--namespace", "--version", "run", "images"),
                List.of("run"), List.of("--interactive", "--tty", "--detach", "--rm", "--env", "--env-file",
                        "--mount", "--memory", "--cpus", "--pids-limit", "--user", "--cwd", "--hostname",
                        "--read-only", "--shim", "--shim-binary", "--rootfs", "--image", "--entrypoint"),
                List.of("exec"), List.of("--interactive", "--tty", "--env", "--user", "--cwd", "--exec-id"),
                List.of("kill"), List.of("--signal"),
                List.of("delete"), List.of("--force"),
                List.of("ps"), List.of("--help"),
                List.of("images"), List.of("import", "ls", "rm"),
                List.of("images", "import"), List.of("--name"),
                List.of("events"), List.of("--help"),
                List.of("completion"), List.of("--help"));
        commands.forEach((command, options) -> {
            List<String> args = new ArrayList<>(command);
            args.add("--help");
            Outcome help = cli(args.toArray(String[]::new));
            assertThat(help.status()).as(command.toString()).isZero();
            assertThat(help.out()).as(command.toString()).startsWith("Usage: shimmer").contains(options);
        });
    }

    @Test
    void completionIsABashScriptNamingTheCommands() throws Exception {
        Outcome completion = cli("completion");
        assertThat(completion.status()).isZero();
        assertThat(completion.out()).contains("complete -F").contains("run").contains("exec").contains("images")
                .contains("--env-file");

        Path script = Files.writeString(temp.resolve("shimmer-completion.bash"), completion.out());
        Process bash = new ProcessBuilder("bash", "-n", script.toString()).redirectErrorStream(true).start();
        String syntax = new String(bash.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(bash.waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(bash.exitValue()).as(syntax).isZero();
    }

    private void awaitStopped(String id) {
        for (int i = 0; i < 100; i++) {
            if (cli("ps").out().contains("stopped")) {
                return;
            }
        }
        throw new AssertionError(id + " did not stop");
    }

    private static void assertStatus(Outcome outcome, int status, String words) {
        assertThat(outcome.status()).as(outcome.err()).isEqualTo(status);
        assertThat(outcome.err()).startsWith("shimmer: ").contains(words);
        assertThat(outcome.err().strip().lines()).as("one line").hasSize(1);
    }

    /** No bundle, runc container, mount or process of this test's state root. */
    private void assertNothingLeft() throws Exception {
        assertThat(cli("ps").out().lines()).as("no bundle listed").hasSize(1);
        CliLeftovers.assertNoneUnder(temp);
    }
}
