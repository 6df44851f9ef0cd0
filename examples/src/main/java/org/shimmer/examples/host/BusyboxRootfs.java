package org.shimmer.examples.host;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/** A tiny root filesystem from Debian's static busybox, for the demo and the tests. */
public final class BusyboxRootfs {

    private static final List<String> APPLETS = List.of("sh", "echo", "sleep", "true", "cat", "ls", "date", "hostname");

    private BusyboxRootfs() {}

    /** Writes busybox, its applet links and the mount points into {@code dir}; returns {@code dir}. */
    public static Path write(Path dir) throws IOException {
        Path bin = Files.createDirectories(dir.resolve("bin"));
        Files.copy(Path.of("/bin/busybox"), bin.resolve("busybox"), StandardCopyOption.COPY_ATTRIBUTES,
                StandardCopyOption.REPLACE_EXISTING);
        for (String applet : APPLETS) {
            Path link = bin.resolve(applet);
            if (!Files.exists(link, LinkOption.NOFOLLOW_LINKS)) {
                Files.createSymbolicLink(link, Path.of("busybox"));
            }
        }
        for (String mountPoint : List.of("proc", "dev", "sys", "tmp", "etc", "run")) {
            Files.createDirectories(dir.resolve(mountPoint));
        }
        return dir;
    }
}
