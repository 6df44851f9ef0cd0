package org.shimmer.runtime.image;

import java.nio.file.Path;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.InvalidIdentifierException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RuntimeConfig;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * The image store of a runtime, under its {@linkplain RuntimeConfig#imageRoot() image root}: OCI images imported
 * from image layouts, without a daemon or a registry.
 *
 * <p>Every blob an import reads is checked against its sha256 digest, and every layer's unpacked content against
 * its diff id. A layer is unpacked once, into a directory named by its diff id, and shared by every image that has
 * it and every container run from those images; the layers are the lower layers of a container's overlay root and
 * are never written. An import is idempotent, and crash-safe: an import killed midway leaves nothing that lists as
 * imported, and the next import of the same layout completes it.
 *
 * <p>Like every runtime operation, each method is lazy and reports errors as error signals.
 */
public interface Images {

    /**
     * Imports {@code request}'s layout: a directory holding an OCI image layout ({@code oci-layout},
     * {@code index.json}, {@code blobs/sha256/…}) or a tar of one (an {@code oci-archive}, or what {@code docker
     * save} writes since Docker 25). Nested indexes are followed to the {@code linux/amd64} manifest.
     *
     * @return the image; fails with {@link InvalidImageException} (a malformed layout, a blob whose digest does
     *     not match, a hostile layer entry: each names the blob or entry), {@link NotFoundException} (no layout at
     *     the path, no {@code linux/amd64} manifest), {@link InvalidIdentifierException} (a bad name) and then
     *     leaves nothing that lists as imported
     */
    Mono<Image> importLayout(ImportRequest request);

    /** {@link #importLayout(ImportRequest)} of {@code layout}, named as the layout names it. */
    default Mono<Image> importLayout(Path layout) {
        return importLayout(ImportRequest.of(layout));
    }

    /** {@link #importLayout(ImportRequest)} of {@code layout}, named {@code name} ({@link ImageNames}). */
    default Mono<Image> importLayout(Path layout, String name) {
        return importLayout(ImportRequest.of(layout).withName(name));
    }

    /** The imported images, by name. */
    Flux<Image> list();

    /**
     * The image named {@code name} (a name without a tag means {@code :latest}); fails with
     * {@link NotFoundException} when there is none, {@link InvalidIdentifierException} for a bad name.
     */
    Mono<Image> get(String name);

    /**
     * Removes the name {@code name}, and the layers no other image has. Fails with
     * {@link FailedPreconditionException} while a container made from the image exists (running or not, until
     * it is deleted), with {@link NotFoundException} when there is no such image.
     */
    Mono<Void> remove(String name);
}
