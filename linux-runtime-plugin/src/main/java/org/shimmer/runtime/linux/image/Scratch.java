package org.shimmer.runtime.linux.image;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import org.shimmer.runtime.linux.bundle.DirectoryTrees;

/**
 * One import's directory under {@code tmp/}, and the sweep of the directories of imports that died.
 *
 * <p>Invariant: a {@code tmp/} entry belongs to a live import exactly while its {@code owner} file is flock'ed;
 * the import holds that lock from the moment the directory exists (both made under the store's lock, which the
 * sweep also holds) until the directory is deleted. A killed import's lock goes with its process, so the next
 * sweep deletes what it left, and never the directory of an import still running, in this JVM or another.
 * The {@code claims} file lists the diff ids the import uses: a remove keeps those layers, as an import takes a
 * layer it found unpacked before its image record exists.
 */
final class Scratch implements AutoCloseable {

    private static final String OWNER = "owner";
    private static final String CLAIMS = "claims";

    private final Path dir;
    private final FileLock owner;

    private Scratch(Path dir, FileLock owner) {
        this.dir = dir;
        this.owner = owner;
    }

    /** A new scratch directory under {@code tmp}; call with the store's lock held. */
    static Scratch create(Path tmp) throws IOException {
        Path dir = Files.createDirectory(tmp.resolve(UUID.randomUUID().toString()), ImageStore.PRIVATE_DIRECTORY);
        try {
            return new Scratch(dir, FileLock.acquire(dir.resolve(OWNER)));
        } catch (IOException | RuntimeException e) {
            DirectoryTrees.deleteRecursively(dir);
            throw e;
        }
    }

    Path dir() {
        return dir;
    }

    /** Records the layers this import uses; call with the store's lock held. */
    void claim(List<String> diffIds) throws IOException {
        Path temporary = dir.resolve(CLAIMS + ".tmp");
        Files.write(temporary, String.join("\n", diffIds).getBytes(StandardCharsets.UTF_8));
        Files.move(temporary, dir.resolve(CLAIMS), StandardCopyOption.ATOMIC_MOVE);
    }

    /**
     * Deletes the entries of {@code tmp} no live import owns and returns the diff ids the live ones claim; call
     * with the store's lock held.
     */
    static Set<String> sweep(Path tmp) throws IOException {
        Set<String> claimed = new HashSet<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(tmp)) {
            for (Path entry : entries) {
                if (!Files.isDirectory(entry, LinkOption.NOFOLLOW_LINKS)) {
                    // Nothing of ours: no import owns a file or a link here.
                    DirectoryTrees.deleteRecursively(entry);
                    continue;
                }
                // A directory without an owner file is a removed layer on its way out: free as well.
                try (FileLock free = FileLock.tryAcquire(entry.resolve(OWNER))) {
                    if (free != null) {
                        DirectoryTrees.deleteRecursively(entry);
                    } else {
                        claimed.addAll(claims(entry));
                    }
                }
            }
        } catch (NoSuchFileException e) {
            return claimed;
        }
        return claimed;
    }

    private static List<String> claims(Path dir) throws IOException {
        try {
            return List.of(new String(Files.readAllBytes(dir.resolve(CLAIMS)), StandardCharsets.UTF_8)
                    .split("\n"));
        } catch (NoSuchFileException e) {
            return List.of();
        }
    }

    /** Deletes the directory, then lets go of it. */
    @Override
    public void close() throws IOException {
        try {
            DirectoryTrees.deleteRecursively(dir);
        } finally {
            owner.close();
        }
    }
}
