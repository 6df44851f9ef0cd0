package org.shimmer.runtime.linux.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

/**
 * Builds OCI image layouts for tests, as a directory or as a tar of one (an {@code oci-archive}).
 *
 * <pre>{@code
 * OciLayouts.Image image = OciLayouts.image()
 *         .layer(OciLayouts.tar(Map.of("bin/hello", bytes)))        // gzip
 *         .layer(OciLayouts.tar(Map.of("etc/x", bytes)), OciLayouts.Compression.NONE)
 *         .entrypoint("/bin/hello").env("A=1").workingDir("/tmp");
 * OciLayouts.layout().tagged(image, "v1").writeDirectory(dir);          // or writeTar(file)
 * OciLayouts.layout().tagged(OciLayouts.index(armImage.platform("linux/arm64"), image), "v1")  // nested index
 * }</pre>
 *
 * Layers are tars made here from file contents ({@link #tar}) or given as bytes (such as {@code TarLayers}' hostile
 * ones). Each image's blobs are computed when the layout is written; {@link Image#digest()} is the manifest's.
 */
public final class OciLayouts {

    private static final ObjectMapper JSON = JsonMapper.builder().build();
    private static final HexFormat HEX = HexFormat.of();

    private OciLayouts() {}

    public enum Compression {
        NONE("application/vnd.oci.image.layer.v1.tar"),
        GZIP("application/vnd.oci.image.layer.v1.tar+gzip"),
        /** By the {@code zstd} command, as containerd's and buildkit's zstd layers are made. */
        ZSTD("application/vnd.oci.image.layer.v1.tar+zstd");

        private final String mediaType;

        Compression(String mediaType) {
            this.mediaType = mediaType;
        }

        public String mediaType() {
            return mediaType;
        }
    }

    public static Image image() {
        return new Image();
    }

    public static Layout layout() {
        return new Layout();
    }

    /** A nested index of {@code manifests} (each with its platform). */
    public static Index index(Content... manifests) {
        return new Index(List.of(manifests));
    }

    /** A tar of regular files (0644, root, in order), with their parent directories (0755) made before them. */
    public static byte[] tar(Map<String, byte[]> files) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(bytes)) {
            tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
            tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
            List<String> dirs = new ArrayList<>();
            for (Map.Entry<String, byte[]> file : files.entrySet()) {
                String name = file.getKey();
                for (int slash = name.indexOf('/'); slash > 0; slash = name.indexOf('/', slash + 1)) {
                    String dir = name.substring(0, slash + 1);
                    if (!dirs.contains(dir)) {
                        dirs.add(dir);
                        TarArchiveEntry entry = new TarArchiveEntry(dir);
                        entry.setMode(040755);
                        tar.putArchiveEntry(entry);
                        tar.closeArchiveEntry();
                    }
                }
                TarArchiveEntry entry = new TarArchiveEntry(name);
                entry.setMode(0100644);
                entry.setSize(file.getValue().length);
                tar.putArchiveEntry(entry);
                tar.write(file.getValue());
                tar.closeArchiveEntry();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    /** One file's tar: {@code tar(Map.of(name, text))}. */
    public static byte[] tar(String name, String text) {
        return tar(Map.of(name, text.getBytes(StandardCharsets.UTF_8)));
    }

    /** What a layout or an index lists: an image's manifest or a nested index. */
    public sealed interface Content permits Image, Index {
        /** The descriptor of this content, its blobs put into {@code blobs}. */
        ObjectNode write(Map<String, byte[]> blobs);
    }

    /** An image: layers, config, manifest. */
    public static final class Image implements Content {
        private final List<byte[]> layers = new ArrayList<>();
        private final List<Compression> compressions = new ArrayList<>();
        private final Map<Integer, String> diffIds = new LinkedHashMap<>();
        private final Map<Integer, Long> sizes = new LinkedHashMap<>();
        private final Map<Integer, String> mediaTypes = new LinkedHashMap<>();
        private final ObjectNode config = JSON.createObjectNode();
        private String platform = "linux/amd64";
        private String configArchitecture;
        private String digest;

        private Image() {}

        public Image layer(byte[] tar) {
            return layer(tar, Compression.GZIP);
        }

        public Image layer(byte[] tar, Compression compression) {
            layers.add(tar);
            compressions.add(compression);
            return this;
        }

        public Image entrypoint(String... args) {
            strings("Entrypoint", args);
            return this;
        }

        public Image cmd(String... args) {
            strings("Cmd", args);
            return this;
        }

        public Image env(String... entries) {
            strings("Env", entries);
            return this;
        }

        public Image workingDir(String dir) {
            config.put("WorkingDir", dir);
            return this;
        }

        public Image user(String user) {
            config.put("User", user);
            return this;
        }

        /** Sets {@code field} of the image's config to {@code value} as given, of any JSON type. */
        public Image configField(String field, com.fasterxml.jackson.databind.JsonNode value) {
            config.set(field, value);
            return this;
        }

        public Image label(String key, String value) {
            config.withObject("Labels").put(key, value);
            return this;
        }

        /** Writes {@code architecture} in the config, whatever the platform the image is listed with. */
        public Image configArchitecture(String architecture) {
            this.configArchitecture = architecture;
            return this;
        }

        /** {@code os/architecture[/variant]}, or null for a manifest listed without a platform. */
        public Image platform(String platform) {
            this.platform = platform;
            return this;
        }

        /** Lists {@code diffId} in the config for layer {@code layer} instead of the right one. */
        public Image wrongDiffId(int layer, String diffId) {
            diffIds.put(layer, diffId);
            return this;
        }

        /** Declares {@code size} in the manifest for layer {@code layer} instead of its real size. */
        public Image declaredSize(int layer, long size) {
            sizes.put(layer, size);
            return this;
        }

        /** Declares {@code mediaType} in the manifest for layer {@code layer}; its blob stays as compressed. */
        public Image mediaType(int layer, String mediaType) {
            mediaTypes.put(layer, mediaType);
            return this;
        }

        /** The manifest's digest, once a layout holding this image was written. */
        public String digest() {
            if (digest == null) {
                throw new IllegalStateException("write a layout holding the image first");
            }
            return digest;
        }

        /** The diff id of layer {@code layer}: the sha256 of its tar. */
        public String diffId(int layer) {
            return sha256(layers.get(layer));
        }

        /**
         * The chain id of layer {@code layer}, as the config's diff ids give it: what the image store names its
         * directory by.
         */
        public String chainId(int layer) {
            String chainId = diffIds.getOrDefault(0, diffId(0));
            for (int i = 1; i <= layer; i++) {
                chainId = sha256((chainId + " " + diffIds.getOrDefault(i, diffId(i)))
                        .getBytes(StandardCharsets.UTF_8));
            }
            return chainId;
        }

        /** The digest of layer {@code layer}'s blob (its compressed bytes). */
        public String layerDigest(int layer) {
            return sha256(compress(layers.get(layer), compressions.get(layer)));
        }

        @Override
        public ObjectNode write(Map<String, byte[]> blobs) {
            ObjectNode manifest = JSON.createObjectNode();
            manifest.put("schemaVersion", 2);
            manifest.put("mediaType", "application/vnd.oci.image.manifest.v1+json");
            ObjectNode image = JSON.createObjectNode();
            image.put("architecture", configArchitecture != null ? configArchitecture
                    : platform == null ? "amd64" : platform.split("/")[1]);
            image.put("os", "linux");
            image.set("config", config);
            ObjectNode rootfs = image.putObject("rootfs");
            rootfs.put("type", "layers");
            ArrayNode diffIdList = rootfs.putArray("diff_ids");
            ArrayNode layerList = manifest.putArray("layers");
            for (int i = 0; i < layers.size(); i++) {
                byte[] blob = compress(layers.get(i), compressions.get(i));
                diffIdList.add(diffIds.getOrDefault(i, sha256(layers.get(i))));
                ObjectNode layer = descriptor(mediaTypes.getOrDefault(i, compressions.get(i).mediaType()), blob,
                        blobs);
                if (sizes.containsKey(i)) {
                    layer.put("size", sizes.get(i));
                }
                layerList.add(layer);
            }
            manifest.set("config", descriptor("application/vnd.oci.image.config.v1+json", json(image), blobs));
            ObjectNode descriptor = descriptor("application/vnd.oci.image.manifest.v1+json", json(manifest), blobs);
            digest = descriptor.get("digest").asText();
            putPlatform(descriptor, platform);
            return descriptor;
        }

        private void strings(String field, String... values) {
            ArrayNode array = config.putArray(field);
            for (String value : values) {
                array.add(value);
            }
        }
    }

    /** A nested index (OCI image index) of manifests or further indexes. */
    public static final class Index implements Content {
        private final List<Content> manifests;

        private Index(List<Content> manifests) {
            this.manifests = manifests;
        }

        @Override
        public ObjectNode write(Map<String, byte[]> blobs) {
            ObjectNode index = JSON.createObjectNode();
            index.put("schemaVersion", 2);
            index.put("mediaType", "application/vnd.oci.image.index.v1+json");
            ArrayNode list = index.putArray("manifests");
            manifests.forEach(content -> list.add(content.write(blobs)));
            return descriptor("application/vnd.oci.image.index.v1+json", json(index), blobs);
        }
    }

    /** A layout: its top index lists contents, each maybe tagged. */
    public static final class Layout {
        private final List<Content> contents = new ArrayList<>();
        private final List<Map<String, String>> annotations = new ArrayList<>();

        private Layout() {}

        /** Lists {@code content} with {@code org.opencontainers.image.ref.name} = {@code ref}. */
        public Layout tagged(Content content, String ref) {
            return add(content, Map.of("org.opencontainers.image.ref.name", ref));
        }

        /** Lists {@code content} untagged. */
        public Layout untagged(Content content) {
            return add(content, Map.of());
        }

        /** Lists {@code content} with these annotations on its top descriptor. */
        public Layout add(Content content, Map<String, String> annotations) {
            contents.add(content);
            this.annotations.add(annotations);
            return this;
        }

        /** The layout's files: {@code oci-layout}, {@code index.json}, {@code blobs/sha256/<hex>}. */
        public Map<String, byte[]> files() {
            Map<String, byte[]> blobs = new LinkedHashMap<>();
            ObjectNode index = JSON.createObjectNode();
            index.put("schemaVersion", 2);
            index.put("mediaType", "application/vnd.oci.image.index.v1+json");
            ArrayNode list = index.putArray("manifests");
            for (int i = 0; i < contents.size(); i++) {
                ObjectNode descriptor = contents.get(i).write(blobs);
                if (!annotations.get(i).isEmpty()) {
                    ObjectNode node = descriptor.putObject("annotations");
                    annotations.get(i).forEach(node::put);
                }
                list.add(descriptor);
            }
            Map<String, byte[]> files = new LinkedHashMap<>();
            files.put("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}".getBytes(StandardCharsets.UTF_8));
            files.put("index.json", json(index));
            blobs.forEach((digest, bytes) -> files.put("blobs/sha256/" + digest.substring(7), bytes));
            return files;
        }

        /** Writes the layout into the directory {@code dir} (made if absent); returns it. */
        public Path writeDirectory(Path dir) throws IOException {
            for (Map.Entry<String, byte[]> file : files().entrySet()) {
                Path path = dir.resolve(file.getKey());
                Files.createDirectories(path.getParent());
                Files.write(path, file.getValue());
            }
            return dir;
        }

        /** Writes the layout as a tar, as {@code skopeo copy … oci-archive:} does; returns it. */
        public Path writeTar(Path file) throws IOException {
            Files.createDirectories(file.toAbsolutePath().getParent());
            try (OutputStream out = Files.newOutputStream(file);
                    TarArchiveOutputStream tar = new TarArchiveOutputStream(out)) {
                tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
                for (String dir : List.of("blobs/", "blobs/sha256/")) {
                    TarArchiveEntry entry = new TarArchiveEntry(dir);
                    entry.setMode(040755);
                    tar.putArchiveEntry(entry);
                    tar.closeArchiveEntry();
                }
                for (Map.Entry<String, byte[]> layoutFile : files().entrySet()) {
                    TarArchiveEntry entry = new TarArchiveEntry(layoutFile.getKey());
                    entry.setMode(0100644);
                    entry.setSize(layoutFile.getValue().length);
                    tar.putArchiveEntry(entry);
                    tar.write(layoutFile.getValue());
                    tar.closeArchiveEntry();
                }
            }
            return file;
        }
    }

    /** The sha256 digest of {@code bytes}, {@code sha256:<hex>}. */
    public static String sha256(byte[] bytes) {
        try {
            return "sha256:" + HEX.formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static byte[] compress(byte[] tar, Compression compression) {
        if (compression == Compression.NONE) {
            return tar;
        }
        if (compression == Compression.ZSTD) {
            return zstd(tar);
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (GZIPOutputStream gzip = new GZIPOutputStream(bytes)) {
            gzip.write(tar);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    private static byte[] zstd(byte[] tar) {
        try {
            Process zstd = new ProcessBuilder("zstd", "-q", "-c").redirectError(ProcessBuilder.Redirect.INHERIT)
                    .start();
            // Fed from another thread: zstd writes its output while it reads, and a full pipe would stall both.
            Thread feeder = Thread.ofVirtual().start(() -> {
                try (OutputStream in = zstd.getOutputStream()) {
                    in.write(tar);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            byte[] compressed = zstd.getInputStream().readAllBytes();
            feeder.join();
            if (zstd.waitFor() != 0) {
                throw new IllegalStateException("zstd exited with " + zstd.exitValue());
            }
            return compressed;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** The descriptor of {@code blob}, put into {@code blobs}. */
    private static ObjectNode descriptor(String mediaType, byte[] blob, Map<String, byte[]> blobs) {
        String digest = sha256(blob);
        blobs.put(digest, blob);
        ObjectNode descriptor = JSON.createObjectNode();
        descriptor.put("mediaType", mediaType);
        descriptor.put("digest", digest);
        descriptor.put("size", blob.length);
        return descriptor;
    }

    private static void putPlatform(ObjectNode descriptor, String platform) {
        if (platform != null) {
            String[] parts = platform.split("/");
            ObjectNode node = descriptor.putObject("platform");
            node.put("os", parts[0]);
            node.put("architecture", parts[1]);
            if (parts.length > 2) {
                node.put("variant", parts[2]);
            }
        }
    }

    private static byte[] json(ObjectNode node) {
        try {
            return JSON.writeValueAsBytes(node);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
