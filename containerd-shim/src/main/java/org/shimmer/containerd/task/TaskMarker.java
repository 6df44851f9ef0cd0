package org.shimmer.containerd.task;

import java.io.IOException;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;
import java.util.Properties;
import org.shimmer.runtime.RuncOptions;

/**
 * The file {@code shimmer-task} in a containerd bundle: present from before a create touches anything until the
 * task's delete finished, with the runc options the task runs with. The shim binary's {@code delete}, which
 * containerd runs after every task (and after a shim died), finds nothing to clean without it and answers at once;
 * with it, something of the task may be left (the daemon died), and the cleanup needs the runc root to find it.
 */
public record TaskMarker(String runtimeRoot, String binaryName) {

    /** The marker's name in the bundle. */
    public static final String FILE = "shimmer-task";

    static TaskMarker of(RuncOptions options) {
        return new TaskMarker(options.runtimeRoot(), options.effectiveBinaryName());
    }

    /** The runc options the task ran with. */
    public RuncOptions options() {
        return RuncOptions.defaults().withRuntimeRoot(runtimeRoot).withBinaryName(binaryName);
    }

    /** Writes the marker into {@code bundle}, whole or not at all. Blocking. */
    void write(Path bundle) throws IOException {
        Path temporary = bundle.resolve(FILE + ".tmp");
        Files.writeString(temporary, "runtime-root=" + runtimeRoot + "\nbinary-name=" + binaryName + "\n",
                StandardCharsets.UTF_8);
        Files.move(temporary, bundle.resolve(FILE), StandardCopyOption.ATOMIC_MOVE);
    }

    /** The marker in {@code bundle}, if any. Blocking. */
    public static Optional<TaskMarker> read(Path bundle) throws IOException {
        String text;
        try {
            text = Files.readString(bundle.resolve(FILE), StandardCharsets.UTF_8);
        } catch (NoSuchFileException none) {
            return Optional.empty();
        }
        Properties properties = new Properties();
        properties.load(new StringReader(text));
        return Optional.of(new TaskMarker(properties.getProperty("runtime-root"),
                properties.getProperty("binary-name", RuncOptions.DEFAULT_BINARY_NAME)));
    }

    /** Removes the marker of {@code bundle}: nothing of the task is left. Blocking. */
    public static void remove(Path bundle) throws IOException {
        Files.deleteIfExists(bundle.resolve(FILE));
    }
}
