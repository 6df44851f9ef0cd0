package org.shimmer.runtime.image;

import java.time.Instant;
import java.util.List;
import java.util.Objects;

/**
 * An imported image.
 *
 * @param name its normalized name, {@code repository:tag} ({@link ImageNames})
 * @param digest the digest of its manifest, {@code sha256:<hex>}: two names of one manifest share it
 * @param config the defaults a container run from it gets ({@link ImageConfig})
 * @param layers the diff ids of its layers ({@code sha256:<hex>} of each unpacked tar), bottom first
 * @param size the bytes its layers' files take unpacked
 * @param imported when it was imported under this name
 */
public record Image(String name, String digest, ImageConfig config, List<String> layers, long size,
        Instant imported) {

    public Image {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(digest, "digest");
        Objects.requireNonNull(config, "config");
        layers = List.copyOf(layers);
        Objects.requireNonNull(imported, "imported");
    }
}
