package org.shimmer.runtime.linux.image;

import java.nio.file.Path;
import java.util.List;
import org.shimmer.runtime.image.ImageConfig;

/**
 * What a container run from an image gets from {@link ImageStore#lease}: the image as the store has it now.
 *
 * @param digest the manifest digest, {@code sha256:<hex>}
 * @param name the image's name
 * @param config its configuration
 * @param layers its unpacked layer directories, bottom first (overlay's lowerdir lists them top first)
 */
public record ImageLease(String digest, String name, ImageConfig config, List<Path> layers) {

    public ImageLease {
        layers = List.copyOf(layers);
    }
}
