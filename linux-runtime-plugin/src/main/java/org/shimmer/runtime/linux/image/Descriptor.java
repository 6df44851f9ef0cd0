package org.shimmer.runtime.linux.image;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;
import org.shimmer.runtime.image.InvalidImageException;

/**
 * An OCI content descriptor: what a blob is, its digest and size, and for an index entry its platform and
 * annotations. Any digest of the OCI grammar is read, but only a sha256 one in its canonical form is followed
 * ({@link #isSupported()}: the digest becomes a file name): an index may list other platforms' manifests by a
 * digest this store cannot check, and those are never read.
 *
 * @param platform {@code os/architecture[/variant]}, or null when the descriptor names none
 */
record Descriptor(String mediaType, String digest, long size, String platform, Map<String, String> annotations) {

    static final String OCI_INDEX = "application/vnd.oci.image.index.v1+json";
    static final String DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
    static final String OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
    static final String DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
    static final String REF_NAME = "org.opencontainers.image.ref.name";
    static final String CONTAINERD_NAME = "io.containerd.image.name";

    private static final Pattern SHA256 = Pattern.compile("sha256:[0-9a-f]{64}");
    /** The OCI image spec's digest grammar: {@code algorithm:encoded}. */
    private static final Pattern DIGEST = Pattern.compile("[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+");

    /** Reads a descriptor of {@code where} (for messages) from {@code node}. */
    static Descriptor of(JsonNode node, String where) {
        if (node == null || !node.isObject()) {
            throw new InvalidImageException(where + ": a descriptor is not a JSON object");
        }
        String digest = node.path("digest").asText("");
        if (!DIGEST.matcher(digest).matches()) {
            throw new InvalidImageException(where + ": malformed digest \"" + digest + "\"");
        }
        JsonNode size = node.get("size");
        if (size == null || !size.canConvertToLong() || size.asLong() < 0) {
            throw new InvalidImageException(where + ": descriptor of " + digest + " has no valid size");
        }
        JsonNode platformNode = node.get("platform");
        String platform = null;
        if (platformNode != null && platformNode.isObject()) {
            // Normalized as containerd's matcher sees it: an index listing linux/x86_64 was skipped as another
            // platform than ours, and the import failed with "no linux/amd64 manifest (it has linux/x86_64)".
            platform = platformNode.path("os").asText("").toLowerCase(Locale.ROOT) + "/"
                    + architecture(platformNode.path("architecture").asText(""));
            String variant = platformNode.path("variant").asText("");
            if (!variant.isEmpty()) {
                platform += "/" + variant;
            }
        }
        Map<String, String> annotations = new LinkedHashMap<>();
        node.path("annotations").properties().forEach(e -> annotations.put(e.getKey(), e.getValue().asText()));
        return new Descriptor(node.path("mediaType").asText(""), digest, size.asLong(), platform,
                Map.copyOf(annotations));
    }

    /** Whether its blob can be read and checked: a canonical sha256 digest. */
    boolean isSupported() {
        return SHA256.matcher(digest).matches();
    }

    /** The digest's hex part: the blob's file name; only of a {@link #isSupported()} digest. */
    String hex() {
        return digest.substring("sha256:".length());
    }

    boolean isIndex() {
        return mediaType.equals(OCI_INDEX) || mediaType.equals(DOCKER_LIST);
    }

    boolean isManifest() {
        return mediaType.equals(OCI_MANIFEST) || mediaType.equals(DOCKER_MANIFEST);
    }

    /**
     * {@code name} as containerd's {@code platforms.Normalize} spells an architecture: lower case, and the names
     * {@code uname} and toolchains give amd64 and arm64 are those.
     */
    static String architecture(String name) {
        String lower = name.toLowerCase(Locale.ROOT);
        return switch (lower) {
            case "x86_64", "x86-64" -> "amd64";
            case "aarch64" -> "arm64";
            case "i386" -> "386";
            default -> lower;
        };
    }

    /** Whether it runs here: linux/amd64 (a variant, such as {@code v2}, is still amd64). */
    boolean isLinuxAmd64() {
        return platform != null && (platform.equals("linux/amd64") || platform.startsWith("linux/amd64/"));
    }

    /** The name the layout gives it: containerd's full name, else the OCI ref name (often a bare tag). */
    String refName() {
        String name = annotations.get(CONTAINERD_NAME);
        return name != null ? name : annotations.get(REF_NAME);
    }
}
