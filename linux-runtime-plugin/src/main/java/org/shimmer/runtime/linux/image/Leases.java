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
import java.util.List;

/**
 * The leases of images by containers, {@code leases/<manifest digest hex>/<sha256 of the bundle path, hex>},
 * each holding the bundle's path. Called under the store's lock only.
 *
 * <p>Invariant: a lease is live while its bundle exists and was made from that image: the bundle's
 * {@code config.json} carries {@link ImageStore#DIGEST_ANNOTATION} with the digest. A lease whose bundle is gone
 * (deleted, or never created because its run failed before) is stale and dropped when found; so a container's
 * delete needs no call here, and a host that crashed mid-run leaves nothing that blocks a remove forever.
 */
final class Leases {

    private static final ObjectMapper JSON = JsonMapper.builder().build();

    private final Path dir;

    Leases(Path dir) {
        this.dir = dir;
    }

    void add(String digest, Path bundle) throws IOException {
        Path digestDir = Files.createDirectories(dir.resolve(hex(digest)), ImageStore.PRIVATE_DIRECTORY);
        Path file = digestDir.resolve(BlobInput.sha256Hex(bundle.toString()));
        Path temporary = file.resolveSibling(file.getFileName() + ".tmp");
        Files.write(temporary, bundle.toString().getBytes(StandardCharsets.UTF_8));
        Files.move(temporary, file, StandardCopyOption.ATOMIC_MOVE);
    }

    void remove(String digest, Path bundle) throws IOException {
        Path digestDir = dir.resolve(hex(digest));
        Files.deleteIfExists(digestDir.resolve(BlobInput.sha256Hex(bundle.toString())));
        deleteIfEmpty(digestDir);
    }

    /** The bundles holding {@code digest} now; stale leases are deleted on the way. */
    List<Path> live(String digest) throws IOException {
        Path digestDir = dir.resolve(hex(digest));
        List<Path> live = new ArrayList<>();
        try (DirectoryStream<Path> leases = Files.newDirectoryStream(digestDir)) {
            for (Path lease : leases) {
                Path bundle = Path.of(new String(Files.readAllBytes(lease), StandardCharsets.UTF_8));
                if (holds(bundle, digest)) {
                    live.add(bundle);
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
            JsonNode annotation = JSON.readTree(config).path("annotations").path(ImageStore.DIGEST_ANNOTATION);
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
