package org.shimmer.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.examples.host.BusyboxImage;
import org.shimmer.examples.host.StateRootCgroups;

/**
 * Images through the CLI as a user works with them: an image built with {@code umoci} (and archived with
 * {@code skopeo}), imported, listed, run through both shims, removed; and {@code run --rootfs} on a writable root
 * that leaves its directory as it was. Real plugin zip through PF4J, real runc, the real shim.
 */
class CliImagesIntegrationTests {

    private static final String DIGEST = "sha256:[0-9a-f]{64}";
    private static final List<String> SHIMS = List.of("local", "remote");

    @TempDir
    static Path images;

    private static Path layout;
    private static Path archive;

    @TempDir
    Path temp;

    private List<String> global;

    /** What one command printed and returned. */
    private record Outcome(int status, String out, String err) {}

    @BeforeAll
    static void buildTheImage() throws Exception {
        layout = BusyboxImage.layout(images);
        archive = BusyboxImage.archive(layout, images.resolve("busybox.tar"));
    }

    @BeforeEach
    void setUp() {
        global = List.of("--plugins", System.getProperty("shimmer.plugins.dir", "target/plugins"),
                "--state-root", temp.resolve("state").toString(), "--work-root", temp.resolve("work").toString(),
                "--image-root", temp.resolve("images").toString());
    }

    /** A fresh state root per test: its typed-spec containers' empty parent cgroups go with it. */
    @AfterEach
    void removeTheStateRootsEmptyCgroups() throws IOException {
        StateRootCgroups.removeEmptyAndListLeft(temp.resolve("state"));
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
    void aLayoutDirectoryAndAnOciArchiveImportAndList() throws Exception {
        Outcome fromDirectory = cli("images", "import", layout.toString());
        Outcome fromArchive = cli("images", "import", archive.toString(), "--name", "archived:v2");

        assertThat(fromDirectory.status()).as(fromDirectory.err()).isZero();
        // Not a terminal: no progress, the one line alone.
        assertThat(fromDirectory.out()).matches("imported busybox:v1 (" + DIGEST + ") \\(1 layer, [0-9.]+MB\\)\n");
        assertThat(fromArchive.status()).as(fromArchive.err()).isZero();
        assertThat(fromArchive.out()).matches("imported archived:v2 " + DIGEST + " \\(1 layer, [0-9.]+MB\\)\n");
        String digest = fromDirectory.out().split(" ")[2];
        assertThat(cli("images", "import", layout.toString()).out()).as("imported again: the same image")
                .startsWith("imported busybox:v1 " + digest + " ");

        List<String> listed = cli("images", "ls").out().lines().toList();
        assertThat(listed).hasSize(3);
        assertThat(listed.get(0)).matches("NAME +DIGEST +LAYERS +SIZE +IMPORTED");
        assertThat(listed.get(1)).matches("archived:v2 +[0-9a-f]{12} +1 +[0-9.]+MB +\\d{4}-\\d\\d-\\d\\dT[0-9:]+Z");
        assertThat(listed.get(2)).matches("busybox:v1 +" + digest.substring(7, 19)
                + " +1 +[0-9.]+MB +\\d{4}-\\d\\d-\\d\\dT[0-9:]+Z");
    }

    @Test
    void anImageRunsWithItsOwnCommandOrTheGivenOneOrAnotherEntrypointThroughBothShims() throws Exception {
        assertThat(cli("images", "import", layout.toString()).status()).isZero();
        for (String shim : SHIMS) {
            Outcome own = cli("run", "--rm", "--shim", shim, "--image", "busybox:v1", "own-" + shim);
            Outcome given = cli("run", "--rm", "--shim", shim, "--image", "busybox:v1", "given-" + shim, "--",
                    "echo \"$GREETING, replaced\" >&2; exit 3");
            Outcome entrypoint = cli("run", "--rm", "--shim", shim, "--image", "busybox:v1", "--entrypoint",
                    "/bin/echo", "entry-" + shim, "--", "no", "shell");

            assertThat(own.status()).as(shim + ": " + own.err()).isZero();
            assertThat(own.out()).as(shim).isEqualTo(BusyboxImage.OUTPUT);
            assertThat(given.status()).as(shim + ": " + given.err()).isEqualTo(3);
            assertThat(given.err()).as(shim).isEqualTo("hello, replaced\n");
            assertThat(entrypoint.status()).as(shim + ": " + entrypoint.err()).isZero();
            assertThat(entrypoint.out()).as(shim).isEqualTo("no shell\n");
        }
        assertNothingLeft();
    }

    @Test
    void removeIsRefusedNamingTheContainerWhileOneFromTheImageExists() throws Exception {
        assertThat(cli("images", "import", layout.toString()).status()).isZero();
        // Without --rm the stopped container stays until deleted, and holds its image.
        for (String shim : SHIMS) {
            Outcome kept = cli("run", "--shim", shim, "--image", "busybox:v1", "kept-" + shim, "--", "true");
            assertThat(kept.status()).as(shim + ": " + kept.err()).isZero();
        }

        Outcome refused = cli("images", "rm", "busybox:v1");

        assertThat(refused.status()).isEqualTo(1);
        assertThat(refused.err()).startsWith("shimmer: ").contains("kept-local").contains("kept-remote");
        assertThat(refused.err().lines()).hasSize(1);
        assertThat(cli("images", "ls").out()).contains("busybox:v1");

        assertThat(cli("delete", "kept-local").status()).isZero();
        assertThat(cli("images", "rm", "busybox:v1").err()).as("still held by the other")
                .contains("kept-remote").doesNotContain("kept-local");
        assertThat(cli("delete", "kept-remote").status()).isZero();
        Outcome removed = cli("images", "rm", "busybox:v1");
        assertThat(removed.status()).as(removed.err()).isZero();
        assertThat(removed.out()).isEqualTo("removed busybox:v1\n");
        assertThat(cli("images", "ls").out().lines()).as("only the header").hasSize(1);
        assertNothingLeft();
    }

    @Test
    void badNamesAndBadCombinationsAreOneLineErrors() throws Exception {
        assertError(cli("images", "rm", "ok", "Bad/Name"), 125, "shimmer: invalid image name \"Bad/Name\"");
        assertError(cli("images", "import", layout.toString(), "--name", "no spaces"), 125,
                "shimmer: invalid image name \"no spaces\"");
        assertError(cli("run", "--image", "UPPER", "x"), 125, "shimmer: invalid image name \"UPPER\"");
        assertError(cli("run", "--image", "busybox:v1", "--rootfs", temp.toString(), "x", "--", "true"), 125,
                "shimmer: run needs exactly one of --rootfs DIR and --image NAME");
        assertError(cli("run", "x", "--", "true"), 125, "shimmer: run needs exactly one of --rootfs DIR and --image");
        assertError(cli("run", "--entrypoint", "/bin/sh", "--rootfs", temp.toString(), "x", "--", "true"), 125,
                "shimmer: --entrypoint needs --image");
        assertError(cli("run", "-d", "--shim", "remote", "--image", "busybox:v1", "x"), 125,
                "shimmer: --detach needs --rootfs");
        assertError(cli("images", "frobnicate"), 125, "shimmer: unknown images command frobnicate");
        assertError(cli("images", "import", temp.resolve("missing").toString()), 125,
                "shimmer: image layout " + temp.resolve("missing") + " does not exist");
        assertError(cli("images", "rm", "nothere"), 1, "shimmer: ");
        assertError(cli("run", "--image", "nothere", "x"), 125, "shimmer: ");
        assertNothingLeft();
    }

    @Test
    void runRootfsWritesIntoItsOwnLayerAndLeavesTheDirectoryAsItWas() throws Exception {
        // Issue 12: a bin-only directory failed on runc's mkdir of /proc in a read-only root.
        Path rootfs = Files.createDirectories(temp.resolve("bin-only/bin"));
        Files.copy(Path.of("/bin/busybox"), rootfs.resolve("busybox"));
        Files.createSymbolicLink(rootfs.resolve("sh"), Path.of("busybox"));
        Path dir = rootfs.getParent();
        Map<String, String> before = tree(dir);

        for (String shim : SHIMS) {
            Outcome outcome = cli("run", "--rm", "--shim", shim, "--rootfs", dir.toString(), "w-" + shim, "--",
                    "/bin/sh", "-c", "test ! -e /etc/y && /bin/busybox mkdir -p /tmp /etc && echo x > /tmp/x"
                            + " && echo y > /etc/y && /bin/busybox cat /tmp/x /etc/y");

            assertThat(outcome.status()).as(shim + ": " + outcome.err()).isZero();
            assertThat(outcome.out()).as(shim).isEqualTo("x\ny\n");
        }
        assertThat(tree(dir)).as("the directory, byte for byte").isEqualTo(before);
        assertNothingLeft();
    }

    @Test
    void anImageRunStoppedBySigtermStopsTheContainerAndLeavesNothing() throws Exception {
        assertThat(cli("images", "import", layout.toString()).status()).isZero();
        Process cli = new ProcessBuilder(java("run", "--rm", "--image", "busybox:v1", "stopped", "--",
                "trap 'echo stopping; exit 143' TERM; echo ready; sleep 60 & wait"))
                .redirectError(temp.resolve("cli-stderr.log").toFile())
                .start();
        BufferedReader out = new BufferedReader(new InputStreamReader(cli.getInputStream(), StandardCharsets.UTF_8));
        assertThat(out.readLine()).as(() -> "stderr: " + read(temp.resolve("cli-stderr.log"))).isEqualTo("ready");

        Processes.signal(cli.pid(), "TERM");

        assertThat(cli.waitFor(30, TimeUnit.SECONDS)).as("the CLI exits").isTrue();
        assertThat(cli.exitValue()).isEqualTo(143);
        assertThat(out.readLine()).isEqualTo("stopping");
        assertNothingLeft();
    }

    @Test
    void anImportStoppedBySigtermCancelsAndLeavesNoScratch() throws Exception {
        // A layout archive whose first entry is a large blob: the import is still extracting it when stopped.
        Path source = Files.createDirectories(temp.resolve("big/blobs/sha256"));
        String hex = "0".repeat(64);
        try (RandomAccessFile blob = new RandomAccessFile(source.resolve(hex).toFile(), "rw")) {
            blob.setLength(512L << 20);
        }
        Files.writeString(temp.resolve("big/oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        Files.writeString(temp.resolve("big/index.json"), "{\"schemaVersion\":2,\"manifests\":[]}");
        Path bigArchive = temp.resolve("big.tar");
        Process tar = new ProcessBuilder("tar", "-cf", bigArchive.toString(), "-C", temp.resolve("big").toString(),
                "blobs", "oci-layout", "index.json").inheritIO().start();
        assertThat(tar.waitFor()).isZero();
        Path tmp = temp.resolve("images/tmp");
        Process cli = new ProcessBuilder(java("images", "import", bigArchive.toString(), "--name", "big:v1"))
                .redirectOutput(temp.resolve("cli-stdout.log").toFile())
                .redirectError(temp.resolve("cli-stderr.log").toFile())
                .start();
        try {
            // Stopped once a MiB of the blob is extracted into the import's scratch directory.
            while (extracted(tmp, hex) < (1 << 20)) {
                assertThat(cli.isAlive()).as(() -> "stderr: " + read(temp.resolve("cli-stderr.log"))).isTrue();
                Thread.sleep(10);
            }
            Processes.signal(cli.pid(), "TERM");

            assertThat(cli.waitFor(30, TimeUnit.SECONDS)).as("the CLI exits").isTrue();
        } finally {
            cli.destroyForcibly();
            cli.waitFor();
        }
        assertThat(cli.exitValue()).as(() -> "stderr: " + read(temp.resolve("cli-stderr.log"))).isEqualTo(143);
        try (Stream<Path> left = Files.list(tmp)) {
            assertThat(left).as("scratch left in the store's tmp/").isEmpty();
        }
        assertThat(cli("images", "ls").out().lines()).as("nothing imported").hasSize(1);
    }

    /** The bytes of blob {@code hex} an import extracted so far into its scratch directory under {@code tmp}. */
    private static long extracted(Path tmp, String hex) throws IOException {
        if (!Files.isDirectory(tmp)) {
            return 0;
        }
        try (Stream<Path> scratch = Files.list(tmp)) {
            long most = 0;
            for (Path dir : scratch.toList()) {
                Path blob = dir.resolve("layout/blobs/sha256").resolve(hex);
                try {
                    most = Math.max(most, Files.size(blob));
                } catch (NoSuchFileException notYetOrGone) {
                    // Not extracted yet, or its import already ended.
                }
            }
            return most;
        }
    }

    @Test
    void importDrawsItsProgressOnATerminalOnly() throws Exception {
        // script(1) gives the CLI a pseudo-terminal, as a user's shell has; in the other tests its output is a pipe.
        Process cli = new ProcessBuilder("script", "-qfc", java("images", "import", layout.toString()).stream()
                .map(CliImagesIntegrationTests::quote).collect(Collectors.joining(" ")), "/dev/null")
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectErrorStream(true)
                .start();
        String printed = new String(cli.getInputStream().readAllBytes(), StandardCharsets.UTF_8);

        assertThat(cli.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(cli.exitValue()).as(printed).isZero();
        // The terminal turns each \n into \r\n.
        assertThat(printed).matches("(?s).*\rlayers 1/1 [0-9a-f]{12} [0-9.]+/[0-9.]+ MB *\r\n"
                + "imported busybox:v1 " + DIGEST + " \\(1 layer, [0-9.]+MB\\)\r\n.*");
    }

    /** The command line of the CLI as its own process, as a user runs it: its main class on this class path. */
    private List<String> java(String... args) {
        List<String> command = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                ShimmerCli.class.getName()));
        command.addAll(global);
        command.addAll(List.of(args));
        return command;
    }

    private static String read(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            return e.toString();
        }
    }

    private static String quote(String word) {
        return "'" + word.replace("'", "'\\''") + "'";
    }

    /** Each entry of {@code dir}'s tree, by path: its type, mode, owner, size, times and content digest. */
    private static Map<String, String> tree(Path dir) throws IOException, NoSuchAlgorithmException {
        Map<String, String> entries = new TreeMap<>();
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path path : walk.toList()) {
                Map<String, Object> attributes = Files.readAttributes(path,
                        "unix:mode,uid,gid,size,lastModifiedTime,ctime,ino,nlink", LinkOption.NOFOLLOW_LINKS);
                String content = Files.isSymbolicLink(path) ? Files.readSymbolicLink(path).toString()
                        : Files.isRegularFile(path, LinkOption.NOFOLLOW_LINKS) ? HexFormat.of().formatHex(
                                MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(path)))
                        : "";
                entries.put(dir.relativize(path).toString(), new TreeMap<>(attributes) + " " + content);
            }
        }
        return entries;
    }

    /** No bundle, runc container, mount or process of this test's roots. */
    private void assertNothingLeft() throws Exception {
        assertThat(cli("ps").out().lines()).as("no bundle listed").hasSize(1);
        CliLeftovers.assertNoneUnder(temp);
    }

    private static void assertError(Outcome outcome, int status, String prefix) {
        assertThat(outcome.status()).as(outcome.err()).isEqualTo(status);
        assertThat(outcome.err()).startsWith(prefix);
        assertThat(outcome.err().strip().lines()).as("one line").hasSize(1);
    }
}
