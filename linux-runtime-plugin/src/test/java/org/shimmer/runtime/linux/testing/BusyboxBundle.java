package org.shimmer.runtime.linux.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * Test bundles with a real root filesystem: the static busybox from Debian's {@code busybox-static} and links to
 * its applets, and a config.json that {@code runc spec} wrote, edited for the test's command.
 */
public final class BusyboxBundle {

    /** Where Debian's busybox-static installs the binary. */
    public static final Path BUSYBOX = Path.of("/bin/busybox");

    private static final List<String> APPLETS = List.of(
            "sh", "echo", "sleep", "true", "false", "cat", "ls", "ps", "kill", "env", "id", "printf", "pwd");
    private static final ObjectMapper JSON = new ObjectMapper();

    private BusyboxBundle() {}

    /** Fills {@code rootfs} with busybox and its applet links. */
    public static void writeRootfs(Path rootfs) throws IOException {
        Path bin = Files.createDirectories(rootfs.resolve("bin"));
        Files.copy(BUSYBOX, bin.resolve("busybox"), StandardCopyOption.COPY_ATTRIBUTES);
        for (String applet : APPLETS) {
            Files.createSymbolicLink(bin.resolve(applet), Path.of("busybox"));
        }
        for (String dir : List.of("proc", "dev", "sys", "tmp", "etc")) {
            Files.createDirectories(rootfs.resolve(dir));
        }
    }

    /** An OCI spec from {@code runc spec}, without a terminal, running {@code args}. */
    public static byte[] spec(Path scratch, String... args) throws IOException, InterruptedException {
        Path dir = Files.createTempDirectory(scratch, "spec");
        Process process = new ProcessBuilder("runc", "spec", "--bundle", dir.toString())
                .redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (process.waitFor() != 0) {
            throw new IOException("runc spec failed: " + output);
        }
        ObjectNode spec = (ObjectNode) JSON.readTree(dir.resolve("config.json").toFile());
        ObjectNode process1 = (ObjectNode) spec.get("process");
        process1.put("terminal", false);
        ArrayNode argv = process1.putArray("args");
        for (String arg : args) {
            argv.add(arg);
        }
        Files.delete(dir.resolve("config.json"));
        Files.delete(dir);
        return JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(spec);
    }

    /** Writes a complete bundle at {@code bundleDir}: rootfs/ and config.json running {@code args}. */
    public static Path write(Path bundleDir, String... args) throws IOException, InterruptedException {
        writeRootfs(Files.createDirectories(bundleDir.resolve("rootfs")));
        Files.write(bundleDir.resolve("config.json"), spec(bundleDir.getParent(), args));
        return bundleDir;
    }
}
