package org.shimmer.runtime.linux.bundle;

import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;

/** Removal of directory trees that refuses to leave the file system it starts on. */
final class DirectoryTrees {

    private DirectoryTrees() {}

    /**
     * Removes {@code root} and everything below it, without following symbolic links. An absent tree, or entries
     * that vanish meanwhile, are fine.
     *
     * <p>Invariant: never descends into another mounted file system. A bundle's {@code rootfs} may still be a
     * mount (a shim that died before unmounting it); removing through it would wipe the mounted image.
     *
     * @throws IOException the first entry that could not be removed, or the mount point that stopped the walk
     */
    static void deleteRecursively(Path root) throws IOException {
        Object rootDevice;
        try {
            rootDevice = Files.getAttribute(root, "unix:dev", LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException e) {
            return;
        }
        Files.walkFileTree(root, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) throws IOException {
                Object device = Files.getAttribute(dir, "unix:dev", LinkOption.NOFOLLOW_LINKS);
                if (!device.equals(rootDevice)) {
                    throw new IOException("refusing to delete across a mount point: " + dir);
                }
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                Files.deleteIfExists(file);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFileFailed(Path file, IOException e) throws IOException {
                if (e instanceof NoSuchFileException) {
                    return FileVisitResult.CONTINUE;
                }
                throw e;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path dir, IOException e) throws IOException {
                if (e != null) {
                    throw e;
                }
                Files.deleteIfExists(dir);
                return FileVisitResult.CONTINUE;
            }
        });
    }
}
