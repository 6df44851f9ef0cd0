package org.shimmer.runtime.linux.image;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The leases of images by containers, {@code leases/<manifest digest hex>/<sha256 of the bundle path, hex>},
 * each holding the bundle's path on its first line and the names of the image's layer directories under
 * {@code layers/} on the next ones (chain ids; a lease written before layers were stored by chain id lists diff ids,
 * the names its layers had then).
 * Called under the store's lock only.
 *
 * <p>Invariant: a lease is live while a holder keeps the lease file flock'ed (the run between the lease and its
 * bundle's {@code config.json}: a remove there once took the layers and the run failed with a raw mount ENOENT;
 * shared, as two runs of one bundle hold one file), or while its bundle exists and was made from that image (the
 * bundle's {@code config.json} carries
 * {@link ImageStore#DIGEST_ANNOTATION} with the digest). A lease whose holder let go and whose bundle is gone
 * (deleted, or never created because its run failed or its process died) is stale and dropped when found; so a
 * container's delete needs no call here, and a host that crashed mid-run leaves nothing that blocks a remove
 * forever. The layers are in the lease because a name may move to another digest: the lease, not a record,
 * keeps the layers under a running container.
 */
final class Leases {

    /** Built on first use: every runtime view makes its image store, and with it this (see ImageRecords.Json). */
    private static final class Json {
        static final ObjectMapper MAPPER = JsonMapper.builder().build();
    }

    /**
     * A live lease: the bundle holding the image, and the ids its layer directories are named by (empty in a lease
     * that lists none).
     */
    record Live(Path bundle, List<String> layers) {}

    private final Path dir;

    Leases(Path dir) {
        this.dir = dir;
    }

    /**
     * Writes the lease of {@code bundle} on {@code digest}; returns its flock (shared), which keeps it live until
     * closed. A lease file of the same bundle, digest and layers is kept and its lock shared: another run of that
     * bundle (another process running the same id) may hold it, and a new file in its place left that run's lock on
     * an unlinked file, so the lease was stale to a remove as soon as this run let go.
     */
    FileLock add(String digest, Path bundle, List<String> layers) throws IOException {
        Path digestDir = Files.createDirectories(dir.resolve(hex(digest)), ImageStore.PRIVATE_DIRECTORY);
        Path file = digestDir.resolve(BlobInput.sha256Hex(bundle.toString()));
        List<String> lines = new ArrayList<>();
        lines.add(bundle.toString());
        lines.addAll(layers);
        byte[] content = String.join("\n", lines).getBytes(StandardCharsets.UTF_8);
        if (Arrays.equals(readIfPresent(file), content)) {
            // Under the store's lock, as every delete of a lease: the file stays under its name meanwhile.
            return FileLock.acquireShared(file);
        }
        Path temporary = file.resolveSibling(file.getFileName() + ".tmp");
        Files.deleteIfExists(temporary);
        // Locked before it has its name: the lock goes with the file, and no remove ever sees it unlocked.
        FileLock pending = FileLock.acquireShared(temporary);
        try {
            Files.write(temporary, content);
            Files.move(temporary, file, StandardCopyOption.ATOMIC_MOVE);
            return pending;
        } catch (IOException | RuntimeException e) {
            pending.close();
            Files.deleteIfExists(temporary);
            throw e;
        }
    }

    private static byte[] readIfPresent(Path file) throws IOException {
        try {
            return Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            return null;
        }
    }

    /** The live leases on {@code digest}; stale leases are deleted on the way. */
    List<Live> live(String digest) throws IOException {
        Path digestDir = dir.resolve(hex(digest));
        List<Live> live = new ArrayList<>();
        try (DirectoryStream<Path> leases = Files.newDirectoryStream(digestDir)) {
            for (Path lease : leases) {
                if (lease.getFileName().toString().endsWith(".tmp")) {
                    // Being written by a lease under the lock (so never seen here), or left by a crash: stale.
                    Files.deleteIfExists(lease);
                    continue;
                }
                Live found = live(lease, digest);
                if (found != null) {
                    live.add(found);
                } else {
                    Files.deleteIfExists(lease);
                }
            }
        } catch (NoSuchFileException e) {
            return List.of();
        }
        deleteIfEmpty(digestDir);
        return live;
    }

    /** The live leases on every digest, by digest; stale leases are deleted on the way. */
    Map<String, List<Live>> all() throws IOException {
        Map<String, List<Live>> all = new LinkedHashMap<>();
        try (DirectoryStream<Path> digests = Files.newDirectoryStream(dir)) {
            for (Path digestDir : digests) {
                String digest = "sha256:" + digestDir.getFileName();
                List<Live> live = live(digest);
                if (!live.isEmpty()) {
                    all.put(digest, live);
                }
            }
        } catch (NoSuchFileException e) {
            return Map.of();
        }
        return all;
    }

    private static Live live(Path lease, String digest) throws IOException {
        List<String> lines;
        try {
            lines = List.of(new String(Files.readAllBytes(lease), StandardCharsets.UTF_8).split("\n"));
        } catch (NoSuchFileException e) {
            return null;
        }
        Live live = new Live(Path.of(lines.getFirst()), lines.subList(1, lines.size()));
        try (FileLock free = FileLock.tryAcquire(lease)) {
            if (free == null) {
                return live;
            }
        }
        return holds(live.bundle(), digest) ? live : null;
    }

    /**
     * Whether {@code bundle} was made from {@code digest}. A config that cannot be read as JSON (being written by
     * a create right now) counts as holding: a wrong "stale" would let the layers under a container go.
     */
    private static boolean holds(Path bundle, String digest) throws IOException {
        byte[] config;
        try {
            config = Files.readAllBytes(bundle.resolve("config.json"));
        } catch (NoSuchFileException e) {
            return false;
        }
        try {
            JsonNode annotation = Json.MAPPER.readTree(config).path("annotations").path(ImageStore.DIGEST_ANNOTATION);
            return annotation.asText("").equals(digest);
        } catch (JacksonException e) {
            return true;
        }
    }

    private static void deleteIfEmpty(Path dir) throws IOException {
        try {
            Files.deleteIfExists(dir);
        } catch (DirectoryNotEmptyException e) {
            // Still leased.
        }
    }

    private static String hex(String digest) {
        return digest.substring(digest.indexOf(':') + 1);
    }
}
