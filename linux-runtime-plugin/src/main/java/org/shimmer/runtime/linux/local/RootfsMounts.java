package org.shimmer.runtime.linux.local;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.shimmer.runtime.shim.Mount;
import org.shimmer.runtime.shim.ShimException;

/** Mounts a create request's rootfs mounts onto the bundle's {@code rootfs}, as the containerd shim does. */
final class RootfsMounts {

    private RootfsMounts() {}

    /** Mounts each in turn onto {@code target}; blocking. On failure, what was mounted is unmounted. */
    static void mount(List<Mount> mounts, Path target) throws IOException, InterruptedException {
        int done = 0;
        try {
            for (Mount mount : mounts) {
                List<String> command = new ArrayList<>(List.of("mount"));
                if (!mount.type().equals("bind")) {
                    command.addAll(List.of("-t", mount.type()));
                }
                if (!mount.options().isEmpty()) {
                    command.addAll(List.of("-o", String.join(",", mount.options())));
                }
                command.addAll(List.of(mount.source(), target.toString()));
                run(command);
                done++;
            }
        } catch (IOException | RuntimeException e) {
            if (done > 0) {
                unmount(target);
            }
            throw e;
        }
    }

    /** Unmounts everything mounted on {@code target}; blocking. */
    static void unmount(Path target) throws IOException, InterruptedException {
        run(List.of("umount", "--recursive", target.toString()));
    }

    private static void run(List<String> command) throws IOException, InterruptedException {
        Process process = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        if (process.waitFor() != 0) {
            throw new ShimException(String.join(" ", command) + " failed: " + output);
        }
    }
}
