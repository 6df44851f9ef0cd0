package org.shimmer.runtime.linux.image;

import java.nio.file.Path;
import java.util.List;
import org.shimmer.runtime.image.ImageConfig;

/**
 * What a container run from an image gets from {@link ImageStore#lease}: the image as the store has it now, and
 * the flock that keeps the lease live until the container's bundle exists.
 *
 * <p>Invariant: the run closes it once its bundle's {@code config.json} exists (from then on the bundle keeps the
 * lease live) or once its rollback is done. Until then a remove counts the lease as live however long the run
 * takes; if the run's process dies, the kernel drops the flock and the lease without a bundle is stale.
 */
public final class ImageLease implements AutoCloseable {

    private final String digest;
    private final String name;
    private final ImageConfig config;
    private final List<Path> layers;
    private final FileLock pending;

    ImageLease(String digest, String name, ImageConfig config, List<Path> layers, FileLock pending) {
        this.digest = digest;
        this.name = name;
        this.config = config;
        this.layers = List.copyOf(layers);
        this.pending = pending;
    }

    /** The manifest digest, {@code sha256:<hex>}. */
    public String digest() {
        return digest;
    }

    /** The image's name. */
    public String name() {
        return name;
    }

    public ImageConfig config() {
        return config;
    }

    /** Its unpacked layer directories, bottom first (overlay's lowerdir lists them top first). */
    public List<Path> layers() {
        return layers;
    }

    /** Lets go of the lease file: from now on only the bundle keeps the lease live. Again: nothing. */
    @Override
    public void close() {
        pending.close();
    }
}
