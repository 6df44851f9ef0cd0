package org.shimmer.runtime.linux.image;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.function.BooleanSupplier;
import java.util.function.LongConsumer;
import java.util.regex.Pattern;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.shimmer.runtime.InvalidIdentifierException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.image.ImageConfig;
import org.shimmer.runtime.image.ImageNames;
import org.shimmer.runtime.image.InvalidImageException;
import org.shimmer.runtime.linux.layer.XattrTarInputStream;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.LinuxCalls.ErrnoException;

/**
 * An OCI image layout being imported: a directory read in place, or a tar of one (an {@code oci-archive}, what
 * {@code docker save} writes since Docker 25) of which only the layout's own files are extracted.
 *
 * <p>Invariant: nothing is trusted before it is checked. Every blob is read through {@link BlobInput} (never past
 * its declared size, its sha256 checked), JSON blobs are capped at {@link #MAX_JSON} bytes, and from an archive
 * only {@code oci-layout}, {@code index.json} and {@code blobs/sha256/<64 hex>} regular files are written, each
 * once, into the import's scratch directory: any other entry with one of those names (a link, a device, a second
 * copy) is refused, and everything else (docker's {@code manifest.json}, {@code repositories}, directories) is
 * skipped. A sparse entry is refused (a few KiB of archive once expanded to gigabytes on disk), and
 * {@code oci-layout} and {@code index.json} are capped at {@link #MAX_JSON} while they are written. A file of a
 * directory layout, and a layout archive, is opened for reading only once {@code fstat} says it is a regular file
 * (through a symlink or not) of no kernel interface: a FIFO blob once hung an io thread in {@code open(2)} beyond
 * any cancel, and a device's open has its driver's effects. A walk of nested indexes visits each index once and
 * at most {@link #MAX_DESCRIPTORS} descriptors.
 */
final class Layout {

    /** The cap of a manifest, index or config: real ones are a few KiB, docker's own limit is 4 MiB. */
    static final int MAX_JSON = 4 << 20;
    private static final int NESTING = 8;
    /**
     * The most lower layers an overlay mount takes (the kernel's {@code OVL_MAX_STACK}): an image of more imported,
     * unpacking every layer, and then no run of it could mount its root.
     */
    static final int MAX_LAYERS = 500;
    /** The descriptors a walk of nested indexes may visit: a DAG of indexes each listing the next many times. */
    static final int MAX_DESCRIPTORS = 10_000;
    /**
     * A layout's file is first opened as a path only: no driver's {@code open} runs, so a symlink to a device or
     * FIFO is refused before it is opened (a FIFO's writer was let through; {@code /dev/watchdog} would start).
     */
    private static final int PATH_FLAGS = LinuxCalls.O_PATH | LinuxCalls.O_CLOEXEC;
    private static final ObjectMapper JSON = JsonMapper.builder().build();
    private static final Pattern BLOB = Pattern.compile("blobs/sha256/[0-9a-f]{64}");
    /**
     * The file systems of the kernel's own interfaces ({@code statfs} magic numbers), whose "regular files" a
     * layout's symlink may name: reading one is no read of data but a call into the kernel, with its effects.
     * {@code /proc/kmsg} takes the kernel log's messages from the system's logger and blocks (beyond any cancel)
     * until the next one; {@code trace_pipe} blocks for ever; others answer with the importer's secrets. A
     * namespace's file ({@code /proc/self/ns/net}, nsfs) fails its read with ESPIPE: a storage error that looked
     * retryable.
     */
    private static final Map<Long, String> KERNEL_FILE_SYSTEMS = Map.ofEntries(
            Map.entry(0x9fa0L, "proc"), Map.entry(0x62656572L, "sysfs"), Map.entry(0x64626720L, "debugfs"),
            Map.entry(0x74726163L, "tracefs"), Map.entry(0x73636673L, "securityfs"),
            Map.entry(0x62656570L, "configfs"), Map.entry(0x27e0ebL, "cgroup"), Map.entry(0x63677270L, "cgroup2"),
            Map.entry(0xcafe4a11L, "bpf"), Map.entry(0x6165676cL, "pstore"), Map.entry(0xde5e81e4L, "efivarfs"),
            Map.entry(0xf97cff8cL, "selinuxfs"), Map.entry(0x6e736673L, "nsfs"));

    /** What an import takes from a layout: its name, manifest, config, and layers with their diff ids. */
    record Resolved(String name, Descriptor manifest, ImageConfig config, List<Descriptor> layers,
            List<String> diffIds) {}

    private final Path source;
    private final Path root;
    private final BooleanSupplier cancelled;

    private Layout(Path source, Path root, BooleanSupplier cancelled) {
        this.source = source;
        this.root = root;
        this.cancelled = cancelled;
    }

    /**
     * The layout at {@code source}: a directory, or a tar extracted into {@code scratch}.
     *
     * @throws NotFoundException when {@code source} is neither
     */
    static Layout open(Path source, Path scratch, BooleanSupplier cancelled) throws IOException {
        if (Files.isDirectory(source)) {
            return new Layout(source, source, cancelled);
        }
        if (!Files.isRegularFile(source)) {
            throw new NotFoundException("no OCI image layout at " + source + ": neither a directory nor a tar");
        }
        Path root = Files.createDirectory(scratch.resolve("layout"));
        Files.createDirectories(root.resolve("blobs/sha256"));
        Layout layout = new Layout(source, root, cancelled);
        layout.extract();
        return layout;
    }

    private void extract() throws IOException {
        Set<String> seen = new HashSet<>();
        // Header-bounded: commons-compress held a GNU long name or PAX header of any size in memory, several
        // times over (a 64 MiB long name on an entry skipped anyway grew the heap by 335 MiB).
        // The archive itself, like a file of a directory layout, may be a symlink to /proc/kmsg: read only once it
        // is a regular file of no kernel interface.
        try (TarArchiveInputStream tar = new XattrTarInputStream(
                new BufferedInputStream(openRegular(source, "layout archive " + source), 64 * 1024))) {
            for (TarArchiveEntry entry = next(tar); entry != null; entry = next(tar)) {
                if (entry.isSparse()) {
                    throw new InvalidImageException("layout archive " + source + ": entry \"" + entry.getName()
                            + "\" is a sparse file");
                }
                String name = entry.getName();
                while (name.startsWith("./")) {
                    name = name.substring(2);
                }
                if (!name.equals("oci-layout") && !name.equals("index.json") && !BLOB.matcher(name).matches()) {
                    continue;
                }
                if (!isRegular(entry)) {
                    throw new InvalidImageException("layout archive " + source + ": entry \"" + entry.getName()
                            + "\" is not a regular file");
                }
                long cap = BLOB.matcher(name).matches() ? Long.MAX_VALUE : MAX_JSON;
                if (entry.getSize() > cap) {
                    throw new InvalidImageException("layout archive " + source + ": entry \"" + entry.getName()
                            + "\" is over " + MAX_JSON + " bytes");
                }
                if (!seen.add(name)) {
                    throw new InvalidImageException("layout archive " + source + ": entry \"" + entry.getName()
                            + "\" appears twice");
                }
                try (OutputStream out = Files.newOutputStream(root.resolve(name), StandardOpenOption.CREATE_NEW,
                        StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS)) {
                    byte[] buffer = new byte[64 * 1024];
                    long written = 0;
                    for (int n; (n = read(tar, buffer, entry)) >= 0; ) {
                        if (cancelled.getAsBoolean()) {
                            throw new CancellationException("import of " + source + " cancelled");
                        }
                        written += n;
                        if (written > cap) {
                            throw new InvalidImageException("layout archive " + source + ": entry \""
                                    + entry.getName() + "\" is over " + MAX_JSON + " bytes");
                        }
                        out.write(buffer, 0, n);
                    }
                }
            }
        }
    }

    /** A regular file's entry: commons-compress's {@code isFile()} also says so of a symlink. */
    private static boolean isRegular(TarArchiveEntry entry) {
        byte type = entry.getLinkFlag();
        return type == TarConstants.LF_NORMAL || type == TarConstants.LF_OLDNORM || type == TarConstants.LF_CONTIG;
    }

    /**
     * The next entry. A damaged or truncated archive is an image error; failures to write what was read (a full
     * disk) stay I/O errors, mapped by the caller.
     */
    private TarArchiveEntry next(TarArchiveInputStream tar) {
        try {
            return tar.getNextEntry();
        } catch (XattrTarInputStream.HeaderRefusal e) {
            throw new InvalidImageException("layout archive " + source + ": entry \"" + e.entry() + "\": "
                    + e.getMessage(), e);
        } catch (IOException e) {
            throw new InvalidImageException("layout archive " + source + " is not a readable tar: "
                    + e.getMessage(), e);
        }
    }

    private int read(TarArchiveInputStream tar, byte[] buffer, TarArchiveEntry entry) {
        try {
            return tar.read(buffer);
        } catch (IOException e) {
            throw new InvalidImageException("layout archive " + source + ": entry \"" + entry.getName()
                    + "\" cannot be read: " + e.getMessage(), e);
        }
    }

    /**
     * Reads the layout's index and follows it to the image to import, named {@code name} when given.
     *
     * @throws NotFoundException no {@code oci-layout}, or no linux/amd64 manifest
     * @throws InvalidImageException anything malformed or failing its digest, named
     */
    Resolved resolve(String name) throws IOException {
        Path marker = root.resolve("oci-layout");
        if (!Files.isRegularFile(marker)) {
            throw new NotFoundException("no OCI image layout at " + source + ": it has no oci-layout file");
        }
        JsonNode layoutVersion = parse(readCapped(marker), "oci-layout").path("imageLayoutVersion");
        if (!layoutVersion.isTextual()) {
            throw new InvalidImageException("layout " + source + ": oci-layout has no imageLayoutVersion");
        }
        Path indexFile = root.resolve("index.json");
        if (!Files.isRegularFile(indexFile)) {
            throw new InvalidImageException("layout " + source + ": it has no index.json");
        }
        List<Descriptor> tops = descriptors(parse(readCapped(indexFile), "index.json"), "index.json");
        List<Descriptor> group = byName(tops, name);
        Walk walk = new Walk();
        Descriptor top = null;
        Descriptor manifest = null;
        for (Descriptor candidate : group) {
            manifest = manifest(List.of(candidate), group.size(), walk, 0);
            if (manifest != null) {
                top = candidate;
                break;
            }
        }
        if (manifest == null) {
            throw new NotFoundException("layout " + source + " has no linux/amd64 manifest"
                    + (walk.platforms.isEmpty() ? "" : " (it has " + String.join(", ", walk.platforms) + ")"));
        }
        JsonNode manifestJson = kind(manifest, json(manifest), false);
        Descriptor configDescriptor = Descriptor.of(manifestJson.get("config"), blobName(manifest));
        List<Descriptor> layers = descriptors(manifestJson, blobName(manifest), "layers");
        if (layers.size() > MAX_LAYERS) {
            throw new InvalidImageException(blobName(manifest) + ": " + layers.size() + " layers, more than the "
                    + MAX_LAYERS + " an overlay can stack");
        }
        JsonNode config = json(configDescriptor);
        checkPlatform(manifest, configDescriptor, config);
        List<String> diffIds = new ArrayList<>();
        for (JsonNode diffId : config.path("rootfs").path("diff_ids")) {
            diffIds.add(diffId.asText(""));
        }
        if (diffIds.size() != layers.size()) {
            throw new InvalidImageException(blobName(configDescriptor) + ": " + diffIds.size()
                    + " diff ids in rootfs.diff_ids for " + layers.size() + " layers in its manifest");
        }
        for (String diffId : diffIds) {
            if (!diffId.matches("sha256:[0-9a-f]{64}")) {
                throw new InvalidImageException(blobName(configDescriptor) + ": malformed diff id \"" + diffId
                        + "\"");
            }
        }
        return new Resolved(name != null ? name : nameOf(top), manifest,
                imageConfig(config.path("config"), blobName(configDescriptor)), layers, diffIds);
    }

    /**
     * Refuses a config whose {@code os} or {@code architecture} (when given) is not linux/amd64: a manifest listed
     * without a platform was taken on trust, so an arm64 image imported and every run of it failed with "exec
     * format error". A manifest an index lists with a platform is taken at the index's word, as containerd takes
     * it: configs that name another platform than their listing are published, and run.
     * The names {@code uname} gives amd64 ({@code x86_64}) are amd64, and an os is taken in any case, as containerd
     * (and podman) normalize them.
     */
    private void checkPlatform(Descriptor manifest, Descriptor configDescriptor, JsonNode config) {
        if (manifest.platform() != null) {
            return;
        }
        String os = config.path("os").asText("");
        String architecture = config.path("architecture").asText("");
        boolean amd64 = architecture.isEmpty() || Descriptor.architecture(architecture).equals("amd64");
        if ((os.isEmpty() || os.equalsIgnoreCase("linux")) && amd64) {
            return;
        }
        String platform = (os.isEmpty() ? "?" : os) + "/" + (architecture.isEmpty() ? "?" : architecture);
        throw new NotFoundException("layout " + source + " has no linux/amd64 manifest (it has " + platform
                + ", by the config " + blobName(configDescriptor) + " of its only manifest)");
    }

    /**
     * The top descriptors to choose the image from: all of them when they name at most one image (platform
     * variants of one image, or a single one), else the one whose ref is {@code name}'s tag or {@code name}.
     */
    private List<Descriptor> byName(List<Descriptor> tops, String name) {
        Map<String, List<Descriptor>> refs = new LinkedHashMap<>();
        for (Descriptor top : tops) {
            String ref = top.refName();
            refs.computeIfAbsent(ref == null ? "<untagged>" : ref, key -> new ArrayList<>()).add(top);
        }
        if (refs.size() <= 1) {
            return tops;
        }
        if (name != null) {
            String tag = name.substring(name.lastIndexOf(':') + 1);
            for (Map.Entry<String, List<Descriptor>> ref : refs.entrySet()) {
                String value = ref.getKey();
                if (value.equals(tag) || value.equals(name)
                        || (ImageNames.isValid(value) && ImageNames.normalize(value).equals(name))) {
                    return ref.getValue();
                }
            }
        }
        throw new InvalidImageException("layout " + source + " holds several images ("
                + String.join(", ", refs.keySet()) + "): "
                + (name == null ? "give a name whose tag is one of them" : "none is " + name));
    }

    /** What a walk of nested indexes has seen: the indexes it read, the descriptors it visited, the platforms. */
    private static final class Walk {
        private final Set<String> indexes = new HashSet<>();
        private final Set<String> platforms = new LinkedHashSet<>();
        private int descriptors;
    }

    /** Follows {@code descriptors} to the linux/amd64 manifest; null when there is none. */
    private Descriptor manifest(List<Descriptor> descriptors, int siblings, Walk walk, int depth)
            throws IOException {
        if (depth > NESTING) {
            throw new InvalidImageException("layout " + source + ": indexes nested deeper than " + NESTING);
        }
        for (Descriptor d : descriptors) {
            if (++walk.descriptors > MAX_DESCRIPTORS) {
                throw new InvalidImageException("layout " + source + ": its indexes list more than "
                        + MAX_DESCRIPTORS + " descriptors");
            }
            boolean fits = d.isLinuxAmd64() || (d.platform() == null && siblings == 1);
            if (d.platform() != null && !fits) {
                walk.platforms.add(d.platform());
            }
            if (!fits && !(d.platform() == null && d.isIndex())) {
                continue;
            }
            if (d.isManifest() && fits) {
                return d;
            }
            // An index read before had no manifest for us (else the walk would have ended): never read again.
            if (d.isIndex() && walk.indexes.add(d.digest())) {
                List<Descriptor> nested = descriptors(kind(d, json(d), true), blobName(d));
                Descriptor found = manifest(nested, nested.size(), walk, depth + 1);
                if (found != null) {
                    return found;
                }
            }
        }
        return null;
    }

    /**
     * {@code json}, the blob of {@code d}, when it is what {@code d} lists it as: an index ({@code index}) or a
     * manifest. A manifest descriptor naming an index failed as "a descriptor is not a JSON object", its missing
     * config; the blob's own {@code mediaType}, or its fields, say what it is.
     */
    private JsonNode kind(Descriptor d, JsonNode json, boolean index) {
        String mediaType = json.path("mediaType").asText("");
        boolean isIndex = json.has("manifests") || mediaType.equals(Descriptor.OCI_INDEX)
                || mediaType.equals(Descriptor.DOCKER_LIST);
        boolean isManifest = json.has("config") || json.has("layers") || mediaType.equals(Descriptor.OCI_MANIFEST)
                || mediaType.equals(Descriptor.DOCKER_MANIFEST);
        String found = isIndex == isManifest ? null : isIndex ? "an image index" : "an image manifest";
        if (found != null && isIndex != index) {
            throw new InvalidImageException(blobName(d) + ": listed as " + (index ? "an index" : "a manifest")
                    + " but is " + found + (mediaType.isEmpty() ? "" : " (mediaType \"" + mediaType + "\")"));
        }
        if (!index && !json.path("config").isObject()) {
            throw new InvalidImageException(blobName(d) + ": a manifest without a \"config\" descriptor"
                    + (mediaType.isEmpty() ? "" : " (mediaType \"" + mediaType + "\")"));
        }
        return json;
    }

    private List<Descriptor> descriptors(JsonNode json, String where) {
        return descriptors(json, where, "manifests");
    }

    private List<Descriptor> descriptors(JsonNode json, String where, String field) {
        JsonNode array = json.get(field);
        if (array == null || !array.isArray()) {
            throw new InvalidImageException("layout " + source + ": " + where + " has no \"" + field
                    + "\" array");
        }
        List<Descriptor> list = new ArrayList<>();
        for (JsonNode node : array) {
            list.add(Descriptor.of(node, "layout " + source + ": " + where));
        }
        return list;
    }

    private String nameOf(Descriptor top) {
        String ref = top.refName();
        if (ref == null || ref.isEmpty()) {
            throw new InvalidIdentifierException("image name", null, "the layout " + source
                    + " names no image (no " + Descriptor.REF_NAME + " annotation): give a name");
        }
        if (ref.contains(":") || ref.contains("/")) {
            return ImageNames.normalize(ref);
        }
        String file = source.getFileName().toString();
        int dot = file.lastIndexOf('.');
        String repository = Files.isDirectory(source) || dot <= 0 ? file : file.substring(0, dot);
        return ImageNames.normalize(repository + ":" + ref);
    }

    /**
     * The run configuration of an image config's {@code config} object, every field of the type the OCI image
     * spec gives it, or absent or null. Read leniently, a corrupt config ran another command than it said: an
     * {@code Entrypoint} string was an empty entrypoint, an {@code Env} object its values as names, any non-string
     * array element an empty string.
     */
    private static ImageConfig imageConfig(JsonNode config, String where) {
        if (absent(config)) {
            return new ImageConfig(List.of(), List.of(), List.of(), "", "", Map.of());
        }
        if (!config.isObject()) {
            throw new InvalidImageException(where + ": \"config\" is not a JSON object");
        }
        Map<String, String> labels = new LinkedHashMap<>();
        JsonNode labelsNode = config.path("Labels");
        if (!absent(labelsNode)) {
            if (!labelsNode.isObject()) {
                throw new InvalidImageException(where + ": config.Labels is not an object of strings");
            }
            labelsNode.properties().forEach(e -> labels.put(e.getKey(), text(e.getValue(), where,
                    "config.Labels." + e.getKey())));
        }
        return new ImageConfig(strings(config.path("Entrypoint"), where, "config.Entrypoint"),
                strings(config.path("Cmd"), where, "config.Cmd"), strings(config.path("Env"), where, "config.Env"),
                text(config.path("WorkingDir"), where, "config.WorkingDir"),
                text(config.path("User"), where, "config.User"), labels);
    }

    private static boolean absent(JsonNode node) {
        return node.isMissingNode() || node.isNull();
    }

    /** A string field; absent or null is empty. */
    private static String text(JsonNode node, String where, String field) {
        if (absent(node)) {
            return "";
        }
        if (!node.isTextual()) {
            throw new InvalidImageException(where + ": " + field + " is not a string");
        }
        return node.textValue();
    }

    /** An array of strings; absent or null is empty. */
    private static List<String> strings(JsonNode array, String where, String field) {
        if (absent(array)) {
            return List.of();
        }
        if (!array.isArray()) {
            throw new InvalidImageException(where + ": " + field + " is not an array of strings");
        }
        List<String> values = new ArrayList<>();
        for (JsonNode value : array) {
            if (!value.isTextual()) {
                throw new InvalidImageException(where + ": " + field + " is not an array of strings");
            }
            values.add(value.textValue());
        }
        return values;
    }

    /** The JSON of {@code blob}, at most {@link #MAX_JSON} bytes, its digest checked. */
    JsonNode json(Descriptor blob) throws IOException {
        if (blob.size() > MAX_JSON) {
            throw new InvalidImageException(blobName(blob) + ": declared size " + blob.size()
                    + " is over the " + MAX_JSON + " bytes a manifest, index or config may have");
        }
        byte[] bytes;
        try (BlobInput in = blob(blob, n -> {})) {
            bytes = in.readNBytes((int) blob.size());
            in.verify();
        }
        return parse(bytes, blobName(blob));
    }

    /** A stream of {@code blob}'s bytes; {@link BlobInput#verify()} checks its size and digest at its end. */
    BlobInput blob(Descriptor blob, LongConsumer progress) throws IOException {
        if (!blob.isSupported()) {
            throw new InvalidImageException(blobName(blob) + ": unsupported digest (only sha256:<64 lower-case hex"
                    + " digits>)");
        }
        InputStream in = openRegular(root.resolve("blobs/sha256").resolve(blob.hex()), blobName(blob));
        return new BlobInput(in, blobName(blob), blob.digest(), blob.size(), cancelled, progress);
    }

    /** How a blob is named in messages. */
    String blobName(Descriptor blob) {
        return "blob " + blob.digest() + " (" + blob.mediaType() + ") of layout " + source;
    }

    /**
     * A stream of {@code file}, a regular file or a symlink to one: opened as a path ({@code O_PATH}: a FIFO's
     * open waits for a writer, a device's has its driver's effects), checked with {@code fstat} and
     * {@code statfs}, then read through its descriptor's {@code /proc} link, which opens that very file.
     */
    private static InputStream openRegular(Path file, String what) throws IOException {
        int fd;
        try {
            fd = LinuxCalls.open(file, PATH_FLAGS);
        } catch (ErrnoException e) {
            if (e.errno() == LinuxCalls.ENOENT) {
                throw new InvalidImageException(what + ": missing from the layout", e);
            }
            if (e.errno() == LinuxCalls.ENXIO || e.errno() == LinuxCalls.ELOOP) {
                throw new InvalidImageException(what + ": not a regular file", e);
            }
            throw e;
        }
        try {
            if (!LinuxCalls.fstat(fd).isRegularFile()) {
                throw new InvalidImageException(what + ": not a regular file");
            }
            Path opened = Path.of("/proc/self/fd/" + fd);
            String kernel = KERNEL_FILE_SYSTEMS.get(LinuxCalls.fileSystemType(opened));
            if (kernel != null) {
                throw new InvalidImageException(what + ": a file of the kernel's " + kernel
                        + " file system, not of an image layout");
            }
            return Files.newInputStream(opened);
        } finally {
            LinuxCalls.close(fd);
        }
    }

    private byte[] readCapped(Path file) throws IOException {
        try (InputStream in = openRegular(file, "layout " + source + ": " + file.getFileName())) {
            byte[] bytes = in.readNBytes(MAX_JSON + 1);
            if (bytes.length > MAX_JSON) {
                throw new InvalidImageException("layout " + source + ": " + file.getFileName() + " is over "
                        + MAX_JSON + " bytes");
            }
            return bytes;
        }
    }

    private JsonNode parse(byte[] bytes, String what) {
        try {
            JsonNode node = JSON.readTree(bytes);
            if (node == null || !node.isObject()) {
                throw new InvalidImageException("layout " + source + ": " + what + " is not a JSON object");
            }
            return node;
        } catch (JacksonException e) {
            throw new InvalidImageException((what.startsWith("blob ") ? what : "layout " + source + ": " + what)
                    + " is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new InvalidImageException(what + ": " + e.getMessage(), e);
        }
    }
}
