package org.shimmer.runtime.linux.layer;

/**
 * A tar entry that must not be unpacked: hostile (it would land outside its layer or forge overlay metadata) or
 * not something a layer can hold. The unpacker turns it into an {@code InvalidImageException} naming the layer
 * and the entry; the reason alone says what is wrong with it.
 */
final class Refusal extends Exception {

    Refusal(String reason) {
        super(reason, null, false, false);
    }
}
