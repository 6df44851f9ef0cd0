package org.shimmer.runtime.image;

/**
 * How far an import is, reported as its layers are read.
 *
 * @param layer the diff id of the layer being read, or of the last one read
 * @param layersDone the layers done (unpacked now, or found unpacked by an earlier import)
 * @param layers the image's layer count
 * @param bytesDone the compressed layer bytes done
 * @param bytes the compressed layer bytes of the image, as its manifest declares them
 */
public record ImportProgress(String layer, int layersDone, int layers, long bytesDone, long bytes) {}
