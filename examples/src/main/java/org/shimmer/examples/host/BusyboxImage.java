package org.shimmer.examples.host;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A one-layer OCI image of Debian's static busybox, built as a user would with {@code umoci} (and {@code skopeo} for
 * its archive): entrypoint {@code /bin/sh -c}, cmd {@code echo "$GREETING from $(pwd)"}, env {@code GREETING=hello},
 * working directory {@code /etc}. Its layout is named {@code busybox} with the tag {@code v1}, so it imports as
 * {@code busybox:v1}. For the demo and the tests; {@code umoci} and {@code skopeo} come from Debian.
 */
public final class BusyboxImage {

    public static final String TAG = "v1";
    /** What the image prints when run with its own command. */
    public static final String OUTPUT = "hello from /etc\n";

    private BusyboxImage() {}

    /** Builds the image layout {@code dir/busybox} and returns it. */
    public static Path layout(Path dir) throws IOException, InterruptedException {
        Path layout = dir.resolve("busybox");
        String image = layout + ":" + TAG;
        Path bundle = dir.resolve("umoci-bundle");
        umoci("init", "--layout", layout.toString());
        umoci("new", "--image", image);
        umoci("unpack", "--image", image, bundle.toString());
        BusyboxRootfs.write(bundle.resolve("rootfs"));
        umoci("repack", "--image", image, bundle.toString());
        umoci("config", "--image", image, "--config.entrypoint", "/bin/sh", "--config.entrypoint", "-c",
                "--config.cmd", "echo \"$GREETING from $(pwd)\"", "--config.env", "GREETING=hello",
                "--config.workingdir", "/etc");
        return layout;
    }

    /** Writes {@code layout} as an {@code oci-archive} tar, {@code file}, with {@code skopeo copy}. */
    public static Path archive(Path layout, Path file) throws IOException, InterruptedException {
        run(List.of("skopeo", "copy", "oci:" + layout + ":" + TAG, "oci-archive:" + file + ":" + TAG));
        return file;
    }

    private static void umoci(String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("umoci"));
        command.addAll(List.of(args));
        run(command);
    }

    private static void run(List<String> command) throws IOException, InterruptedException {
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (process.waitFor() != 0) {
            throw new IOException(String.join(" ", command) + " exited " + process.exitValue() + ": " + output);
        }
    }
}
