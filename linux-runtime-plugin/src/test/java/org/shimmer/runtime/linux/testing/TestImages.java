package org.shimmer.runtime.linux.testing;

import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;

/**
 * OCI images for tests, built once per test JVM in a temporary directory by the real tools a user has: Debian's
 * {@code umoci} makes the layouts (each layer a tar made by GNU {@code tar} from a staged tree, added with {@code
 * umoci raw add-layer}, which gzips it; the config set by {@code umoci config}), {@code skopeo} copies them to an
 * {@code oci-archive} tar and to a zstd-compressed layout. Every root filesystem is Debian's busybox-static with a
 * link per applet. The directory goes when the JVM exits.
 *
 * <ul>
 *   <li>{@link #busybox()}: one layer (busybox, {@code /etc/passwd} and {@code /etc/group} with user {@code app}
 *       1000:1000 and its home {@code /home/app}); entrypoint {@code /bin/busybox}, cmd {@code echo from-cmd}, env
 *       {@code GREETING=from-image}, working dir {@code /home/app}, user {@code app}. No {@code /proc}, {@code /dev},
 *       {@code /sys} or {@code /tmp}: runc must be able to make its mount points in the container's root.</li>
 *   <li>{@link #layered()}: three layers, no entrypoint or cmd, the test content under {@code /data}:
 *     <ol>
 *       <li>busybox; {@code keep.txt}, {@code gone.txt}, {@code replaced.txt}, {@code d/old1}, {@code d/sub/old2},
 *           {@code e/x}, {@code gone-dir/inner}, and {@code owned} (mode 0640, 1000:1000, mtime
 *           {@value #OWNED_MTIME});</li>
 *       <li>whiteout {@code .wh.gone.txt}; {@code d} made opaque ({@code d/.wh..wh..opq}) with {@code d/new2};
 *           symlinks {@code link -> keep.txt} and {@code abslink -> /data/d/new2}; hard links {@code hard1} and
 *           {@code hard2} of one file; {@code e/y};</li>
 *       <li>{@code replaced.txt} rewritten; whiteouts {@code .wh.gone-dir} (a directory) and {@code e/.wh.x} (a file
 *           of layer 1 under a directory layer 2 did not make opaque); {@code d/new3}.</li>
 *     </ol>
 *   </li>
 * </ul>
 * Each file's content is its own name and layer ({@link #content}).
 */
public final class TestImages {

    /** The tag of every image here: a layout {@code DIR} or {@code DIR.tar} then imports as {@code DIR:1.0}. */
    public static final String TAG = "1.0";
    /** {@code /data/owned}'s mtime in the layered image, seconds since the epoch. */
    public static final long OWNED_MTIME = 1_000_000_000L;
    /** The uid and gid of user {@code app} in both images. */
    public static final int APP_ID = 1000;

    private static TestImages built;

    private final Path dir;

    private TestImages(Path dir) {
        this.dir = dir;
    }

    /** The images, built at the first call of this JVM. */
    public static synchronized TestImages get() throws IOException, InterruptedException {
        if (built == null) {
            Path dir = Files.createTempDirectory("shimmer-test-images-");
            Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(dir)));
            TestImages images = new TestImages(dir);
            images.build();
            built = images;
        }
        return built;
    }

    /** The busybox image, an OCI layout directory named {@code busybox}. */
    public Path busybox() {
        return dir.resolve("busybox");
    }

    /** The busybox image as an {@code oci-archive} tar, {@code busybox-archive.tar}. */
    public Path busyboxArchive() {
        return dir.resolve("busybox-archive.tar");
    }

    /** The busybox image with its layer recompressed with zstd, a layout directory named {@code busybox-zstd}. */
    public Path busyboxZstd() {
        return dir.resolve("busybox-zstd");
    }

    /** The three-layer image, a layout directory named {@code layered}. */
    public Path layered() {
        return dir.resolve("layered");
    }

    /** The content of the file {@code name} written by layer {@code layer} of the layered image. */
    public static String content(String name, int layer) {
        return name + " from layer " + layer + "\n";
    }

    private void build() throws IOException, InterruptedException {
        Path busybox = busybox();
        run("umoci", "init", "--layout", busybox.toString());
        run("umoci", "new", "--image", ref(busybox));
        Path root = stage("busybox-root");
        writeBusyboxRoot(root);
        addLayer(busybox, root);
        run("umoci", "config", "--image", ref(busybox), "--config.entrypoint", "/bin/busybox",
                "--config.cmd", "echo", "--config.cmd", "from-cmd", "--config.env", "GREETING=from-image",
                "--config.workingdir", "/home/app", "--config.user", "app");
        run("umoci", "gc", "--layout", busybox.toString());
        run("skopeo", "copy", "--quiet", "oci:" + ref(busybox), "oci-archive:" + busyboxArchive() + ":" + TAG);
        run("skopeo", "copy", "--quiet", "--dest-compress-format", "zstd", "oci:" + ref(busybox),
                "oci:" + ref(busyboxZstd()));

        Path layered = layered();
        run("umoci", "init", "--layout", layered.toString());
        run("umoci", "new", "--image", ref(layered));
        addLayer(layered, layer1(stage("layer1")));
        addLayer(layered, layer2(stage("layer2")));
        addLayer(layered, layer3(stage("layer3")));
        run("umoci", "gc", "--layout", layered.toString());
    }

    private Path layer1(Path root) throws IOException, InterruptedException {
        writeBusyboxRoot(root);
        Path data = Files.createDirectories(root.resolve("data"));
        for (String name : List.of("keep.txt", "gone.txt", "replaced.txt", "d/old1", "d/sub/old2", "e/x",
                "gone-dir/inner", "owned")) {
            write(data, name, 1);
        }
        Path owned = data.resolve("owned");
        Files.setPosixFilePermissions(owned, PosixFilePermissions.fromString("rw-r-----"));
        Files.setAttribute(owned, "unix:uid", APP_ID);
        Files.setAttribute(owned, "unix:gid", APP_ID);
        Files.setLastModifiedTime(owned, FileTime.fromMillis(OWNED_MTIME * 1000));
        return root;
    }

    private Path layer2(Path root) throws IOException {
        Path data = Files.createDirectories(root.resolve("data"));
        whiteout(data, ".wh.gone.txt");
        whiteout(data, "d/.wh..wh..opq");
        write(data, "d/new2", 2);
        Files.createSymbolicLink(data.resolve("link"), Path.of("keep.txt"));
        Files.createSymbolicLink(data.resolve("abslink"), Path.of("/data/d/new2"));
        write(data, "hard1", 2);
        Files.createLink(data.resolve("hard2"), data.resolve("hard1"));
        write(data, "e/y", 2);
        return root;
    }

    private Path layer3(Path root) throws IOException {
        Path data = Files.createDirectories(root.resolve("data"));
        write(data, "replaced.txt", 3);
        whiteout(data, ".wh.gone-dir");
        whiteout(data, "e/.wh.x");
        write(data, "d/new3", 3);
        return root;
    }

    private static void write(Path data, String name, int layer) throws IOException {
        Path file = data.resolve(name);
        Files.createDirectories(file.getParent());
        Files.writeString(file, content(name, layer));
    }

    /** A whiteout is an empty file of that name in the layer tar (the OCI image spec's form). */
    private static void whiteout(Path data, String name) throws IOException {
        Path file = data.resolve(name);
        Files.createDirectories(file.getParent());
        Files.createFile(file);
    }

    private static void writeBusyboxRoot(Path root) throws IOException, InterruptedException {
        Path bin = Files.createDirectories(root.resolve("bin"));
        Files.copy(BusyboxBundle.BUSYBOX, bin.resolve("busybox"), StandardCopyOption.COPY_ATTRIBUTES);
        for (String applet : run(BusyboxBundle.BUSYBOX.toString(), "--list").lines().toList()) {
            if (!applet.equals("busybox")) {
                Files.createSymbolicLink(bin.resolve(applet), Path.of("busybox"));
            }
        }
        Path etc = Files.createDirectories(root.resolve("etc"));
        Files.writeString(etc.resolve("passwd"), "root:x:0:0:root:/root:/bin/sh\n"
                + "app:x:" + APP_ID + ":" + APP_ID + ":app:/home/app:/bin/sh\n");
        Files.writeString(etc.resolve("group"), "root:x:0:\napp:x:" + APP_ID + ":\n");
        Path home = Files.createDirectories(root.resolve("home/app"));
        Files.setAttribute(home, "unix:uid", APP_ID);
        Files.setAttribute(home, "unix:gid", APP_ID);
    }

    private Path stage(String name) throws IOException {
        return Files.createDirectories(dir.resolve("stage").resolve(name));
    }

    /** Tars {@code root}'s top-level entries (names without a leading {@code ./}) and adds them as a layer. */
    private void addLayer(Path layout, Path root) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("tar", "--format=pax", "--numeric-owner", "--sort=name",
                "-cf", root + ".tar", "-C", root.toString()));
        try (var entries = Files.list(root)) {
            entries.map(entry -> entry.getFileName().toString()).sorted().forEach(command::add);
        }
        run(command.toArray(String[]::new));
        run("umoci", "raw", "add-layer", "--image", ref(layout), root + ".tar");
    }

    private static String ref(Path layout) {
        return layout + ":" + TAG;
    }

    private static String run(String... command) throws IOException, InterruptedException {
        return Processes.run(null, command);
    }

    private static void deleteTree(Path root) {
        try {
            Files.walkFileTree(root, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attributes) throws IOException {
                    Files.delete(file);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path directory, IOException e) throws IOException {
                    Files.delete(directory);
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            System.err.println("cannot remove the test images in " + root + ": " + e);
        }
    }
}
