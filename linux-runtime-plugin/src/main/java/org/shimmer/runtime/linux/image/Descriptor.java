package org.shimmer.runtime.linux.image;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;
import org.shimmer.runtime.image.InvalidImageException;

/**
 * An OCI content descriptor: what a blob is, its digest and size, and for an index entry its platform and
 * annotations. Only sha256 digests are accepted, in their canonical form: the digest becomes a file name.
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

    /** Reads a descriptor of {@code where} (for messages) from {@code node}. */
    static Descriptor of(JsonNode node, String where) {
        if (node == null || !node.isObject()) {
            throw new InvalidImageException(where + ": a descriptor is not a JSON object");
        }
        String digest = node.path("digest").asText("");
        if (!SHA256.matcher(digest).matches()) {
            throw new InvalidImageException(where + ": unsupported or malformed digest \"" + digest
                    + "\" (only sha256:<64 lower-case hex digits>)");
        }
        JsonNode size = node.get("size");
        if (size == null || !size.canConvertToLong() || size.asLong() < 0) {
            throw new InvalidImageException(where + ": descriptor of " + digest + " has no valid size");
        }
        JsonNode platformNode = node.get("platform");
        String platform = null;
        if (platformNode != null && platformNode.isObject()) {
            platform = platformNode.path("os").asText("") + "/" + platformNode.path("architecture").asText("");
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

    /** The digest's hex part: the blob's file name. */
    String hex() {
        return digest.substring("sha256:".length());
    }

    boolean isIndex() {
        return mediaType.equals(OCI_INDEX) || mediaType.equals(DOCKER_LIST);
    }

    boolean isManifest() {
        return mediaType.equals(OCI_MANIFEST) || mediaType.equals(DOCKER_MANIFEST);
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
