package org.shimmer.runtime.linux.image;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.function.BooleanSupplier;
import org.shimmer.runtime.linux.bundle.DirectoryTrees;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One import's directory under {@code tmp/}, and the sweep of the directories of imports that died.
 *
 * <p>Invariant: a {@code tmp/} entry belongs to a live import exactly while its {@code owner} file is flock'ed;
 * the import holds that lock from the moment the directory exists (both made under the store's lock, which the
 * sweep also holds) until the directory is deleted. A killed import's lock goes with its process, so the next
 * sweep deletes what it left, and never the directory of an import still running, in this JVM or another.
 * The {@code claims} file lists the chain ids the import uses: a remove keeps those layers, as an import takes a
 * layer it found unpacked before its image record exists.
 *
 * <p>A layer a remove collects is renamed to {@code tmp/removed-<random>}: a {@code removed-} entry is dead as soon
 * as it exists (its layer was unnamed under the lock), so the sweep opens nothing inside it. A layer whose top held
 * an {@code owner} device or symlink once made the sweep open it, hang on it or fail every import and remove.
 *
 * <p>Every delete here stops between two entries once its runtime is stopping ({@link ImageStore#deletesStopped}):
 * what it leaves is a dead entry (a {@code removed-} one, or a scratch directory whose owner lock is let go), and
 * the next sweep finishes it.
 */
final class Scratch implements AutoCloseable {

    private static final String OWNER = "owner";
    private static final String CLAIMS = "claims";
    private static final String REMOVED = "removed-";
    private static final Logger log = LoggerFactory.getLogger(Scratch.class);

    private final Path dir;
    private final FileLock owner;
    private final BooleanSupplier stopped;

    private Scratch(Path dir, FileLock owner, BooleanSupplier stopped) {
        this.dir = dir;
        this.owner = owner;
        this.stopped = stopped;
    }

    /**
     * A new scratch directory under {@code tmp}, whose delete on {@link #close} ends early once {@code stopped}
     * says so; call with the store's lock held.
     */
    static Scratch create(Path tmp, BooleanSupplier stopped) throws IOException {
        Path dir = Files.createDirectory(tmp.resolve(UUID.randomUUID().toString()), ImageStore.PRIVATE_DIRECTORY);
        try {
            return new Scratch(dir, FileLock.acquire(dir.resolve(OWNER)), stopped);
        } catch (IOException | RuntimeException e) {
            DirectoryTrees.deleteRecursively(dir);
            throw e;
        }
    }

    Path dir() {
        return dir;
    }

    /**
     * Renames {@code layer} out of the store to a new {@code tmp/removed-<random>}, dead at once; call with the
     * store's lock held. Returns the entry to delete. A rename only: a remove is how a full disk gets room back,
     * and the directory each layer once went into took an inode, so with none left every remove failed (after its
     * record went) and no layer could ever be freed.
     */
    static Path remove(Path tmp, Path layer) throws IOException {
        Path entry = tmp.resolve(REMOVED + UUID.randomUUID());
        Files.move(layer, entry, StandardCopyOption.ATOMIC_MOVE);
        return entry;
    }

    /** Records the layers this import uses; call with the store's lock held. */
    void claim(List<String> chainIds) throws IOException {
        Path temporary = dir.resolve(CLAIMS + ".tmp");
        Files.write(temporary, String.join("\n", chainIds).getBytes(StandardCharsets.UTF_8));
        Files.move(temporary, dir.resolve(CLAIMS), StandardCopyOption.ATOMIC_MOVE);
    }

    /**
     * What a sweep found: the chain ids live imports claim, and the entries of dead ones, to delete after the
     * store's lock is released (a killed import may have left gigabytes: deleting them is no work for the lock).
     */
    record Swept(Set<String> claimed, List<Path> dead) {

        /**
         * Deletes the dead entries, until {@code stopped} says so; two sweeps may both find one, and both deletes
         * then succeed. A failure is logged, not thrown: it is no failure of the import or remove that swept, and
         * the next sweep retries.
         */
        void deleteDead(BooleanSupplier stopped) {
            for (Path entry : dead) {
                try {
                    if (!DirectoryTrees.deleteRecursively(entry, stopped)) {
                        logStopped(entry);
                        return;
                    }
                } catch (IOException | RuntimeException e) {
                    log.warn("could not delete {} left by a dead import or a remove; the next sweep retries",
                            entry, e);
                }
            }
        }
    }

    /** Finds the entries of {@code tmp} no live import owns, and what the live ones claim; call under the lock. */
    static Swept sweep(Path tmp) throws IOException {
        Set<String> claimed = new HashSet<>();
        List<Path> dead = new ArrayList<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(tmp)) {
            for (Path entry : entries) {
                if (entry.getFileName().toString().startsWith(REMOVED)
                        || !Files.isDirectory(entry, LinkOption.NOFOLLOW_LINKS)) {
                    // A removed layer on its way out, or nothing of ours: no import owns a file or a link here.
                    dead.add(entry);
                    continue;
                }
                // A directory without an owner file is an import that died before locking it: free as well. Its
                // name is random and never reused, so once found free it stays dead after the lock is released.
                try (FileLock free = FileLock.tryAcquire(entry.resolve(OWNER))) {
                    if (free != null) {
                        dead.add(entry);
                    } else {
                        claimed.addAll(claims(entry));
                    }
                } catch (IOException e) {
                    // Neither dead nor known to be alive: kept, and the import or remove that swept goes on.
                    log.warn("could not tell whether the import directory {} is alive; kept", entry, e);
                }
            }
        } catch (NoSuchFileException e) {
            return new Swept(Set.of(), List.of());
        }
        return new Swept(claimed, dead);
    }

    private static List<String> claims(Path dir) throws IOException {
        try {
            return List.of(new String(Files.readAllBytes(dir.resolve(CLAIMS)), StandardCharsets.UTF_8)
                    .split("\n"));
        } catch (NoSuchFileException e) {
            return List.of();
        }
    }

    /** Logs a delete the runtime's stop ended: no failure, and nothing an operator has to do. */
    static void logStopped(Path entry) {
        log.info("stopped deleting {} as the runtime stops; the next import or remove deletes the rest", entry);
    }

    /**
     * Deletes the directory (until the runtime stops: then the rest is dead, and the next sweep deletes it), then
     * lets go of it.
     */
    @Override
    public void close() throws IOException {
        try {
            if (!DirectoryTrees.deleteRecursively(dir, stopped)) {
                logStopped(dir);
            }
        } finally {
            owner.close();
        }
    }
}
