package org.shimmer.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.examples.host.BusyboxRootfs;

/** The CLI as a user runs it: real plugin zip through PF4J, real runc, the real shim. */
class CliIntegrationTests {

    @TempDir
    Path temp;

    private Path image;
    private List<String> global;

    /** What one command printed and returned. */
    private record Outcome(int status, String out, String err) {}

    @BeforeEach
    void setUp() throws IOException {
        image = BusyboxRootfs.write(temp.resolve("image"));
        global = List.of("--plugins", System.getProperty("shimmer.plugins.dir", "target/plugins"),
                "--state-root", temp.resolve("state").toString(), "--work-root", temp.resolve("work").toString());
    }

    private Outcome cli(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        List<String> all = new ArrayList<>(global);
        all.addAll(List.of(args));
        int status = new ShimmerCli(new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8)).execute(all.toArray(String[]::new));
        return new Outcome(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void runReturnsTheContainersExitStatusThroughBothShims() {
        for (String shim : List.of("local", "remote")) {
            Outcome outcome = cli("run", "--rm", "--shim", shim, "--rootfs", image.toString(), "c-" + shim, "--",
                    "/bin/sh", "-c", "echo out via " + shim + "; echo err via " + shim + " >&2; exit 7");

            assertThat(outcome.status()).as(shim + ": " + outcome.err()).isEqualTo(7);
            assertThat(outcome.out()).isEqualTo("out via " + shim + "\n");
            assertThat(outcome.err()).isEqualTo("err via " + shim + "\n");
        }
        assertThat(cli("ps").out().lines()).containsExactly(
                String.format("%-24s %-10s %s", "ID", "STATUS", "PID"));
    }

    @Test
    void detachedContainersCanBeListedExecutedIntoKilledAndDeleted() {
        assertThat(cli("run", "-d", "--shim", "remote", "--rootfs", image.toString(), "bg", "--", "/bin/sleep", "60")
                .out()).isEqualTo("bg\n");
        assertThat(cli("ps").out()).containsPattern("bg +running +\\d+");

        Outcome exec = cli("exec", "bg", "e1", "--", "/bin/sh", "-c", "echo inside; exit 3");
        assertThat(exec.status()).isEqualTo(3);
        assertThat(exec.out()).isEqualTo("inside\n");
        assertThat(cli("delete", "bg").err()).isEqualTo("shimmer: container bg is running; kill it first\n");

        assertThat(cli("kill", "bg", "--signal", "9").status()).isZero();
        awaitStopped("bg");
        assertThat(cli("delete", "bg").status()).isZero();
        assertThat(cli("ps").out().lines()).hasSize(1);
    }

    @Test
    void errorsAreOneClearLineAndANonZeroStatus() {
        assertError(cli("kill", "nope"), "shimmer: bundle default/nope not found");
        assertError(cli("run", "--rootfs", image.toString(), "../x", "--", "/bin/true"), "shimmer: invalid id \"../x\"");
        assertError(cli("run", "--rootfs", temp.resolve("missing").toString(), "x", "--", "/bin/true"),
                "shimmer: rootfs " + temp.resolve("missing") + " does not exist");
        assertError(cli("run", "--shim", "remote", "--shim-binary", "/no/such/shim", "--rootfs", image.toString(),
                "x", "--", "/bin/true"), "shimmer: shim binary /no/such/shim not found");
        assertError(cli("run", "-d", "--rootfs", image.toString(), "x", "--", "/bin/true"),
                "shimmer: --detach needs --shim remote");
        assertError(cli("frobnicate"), "shimmer: unknown command frobnicate");
        for (String shim : List.of("local", "remote")) {
            Outcome missing = cli("run", "--shim", shim, "--rootfs", image.toString(), "bad-" + shim, "--",
                    "/bin/no-such-program");
            assertThat(missing.status()).isNotZero();
            assertThat(missing.err()).startsWith("shimmer: ").contains("no-such-program");
        }
        assertThat(cli("ps").out().lines()).as("nothing was left behind").hasSize(1);
    }

    @Test
    void helpPrintsTheUsage() {
        Outcome help = cli("--help");
        assertThat(help.status()).isZero();
        assertThat(help.out()).startsWith("usage: java -jar shimmer.jar").contains("exec ID EXEC_ID -- CMD");
    }

    @Test
    void pluginsListsTheLoadedPluginWithItsVersion() {
        assertThat(cli("plugins").out()).startsWith("shimmer-linux-runtime 0.1.0-SNAPSHOT ");
    }

    private void awaitStopped(String id) {
        for (int i = 0; i < 100; i++) {
            if (cli("ps").out().contains("stopped")) {
                return;
            }
        }
        throw new AssertionError(id + " did not stop");
    }

    private static void assertError(Outcome outcome, String prefix) {
        assertThat(outcome.status()).isNotZero();
        assertThat(outcome.err()).startsWith(prefix);
        assertThat(outcome.err().strip().lines()).as("one line unless it is a usage message")
                .hasSizeLessThanOrEqualTo(prefix.contains("unknown command") ? 20 : 1);
    }
}
