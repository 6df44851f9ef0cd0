package org.shimmer.runtime.linux.layer;

import java.io.EOFException;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Map;
import java.util.Objects;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;
import org.shimmer.runtime.image.InvalidImageException;

/**
 * A layer blob's tar stream, by the layer's media type: OCI's (plain, gzip, zstd, and their
 * {@code nondistributable} variants) and Docker's gzip ones. An unknown type is refused by name rather than
 * guessed from the bytes: a media type is part of what the image's digests vouch for.
 */
public final class Decompression {

    static final String OCI_TAR = "application/vnd.oci.image.layer.v1.tar";
    static final String OCI_NONDISTRIBUTABLE_TAR = "application/vnd.oci.image.layer.nondistributable.v1.tar";
    static final String DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    static final String DOCKER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

    private enum Codec { NONE, GZIP, ZSTD }

    private static final Map<String, Codec> CODECS = Map.of(
            OCI_TAR, Codec.NONE,
            OCI_NONDISTRIBUTABLE_TAR, Codec.NONE,
            OCI_TAR + "+gzip", Codec.GZIP,
            OCI_NONDISTRIBUTABLE_TAR + "+gzip", Codec.GZIP,
            DOCKER_GZIP, Codec.GZIP,
            DOCKER_FOREIGN_GZIP, Codec.GZIP,
            OCI_TAR + "+zstd", Codec.ZSTD,
            OCI_NONDISTRIBUTABLE_TAR + "+zstd", Codec.ZSTD);

    private Decompression() {}

    /**
     * Whether {@link #open} reads layers of {@code mediaType}: an import checks it before reading any blob, also a
     * blob it will only hash.
     */
    public static boolean supports(String mediaType) {
        return CODECS.containsKey(Objects.requireNonNull(mediaType, "mediaType"));
    }

    /**
     * {@code compressed} decompressed as {@code mediaType} says; closing the result closes {@code compressed}.
     * gzip members and zstd frames may follow one another (as {@code pigz} and {@code zstd -T} write them).
     *
     * @throws InvalidImageException when {@code mediaType} is not a layer type this reads
     * @throws IOException when the stream cannot be opened (a gzip header that is not one)
     */
    public static InputStream open(InputStream compressed, String mediaType) throws IOException {
        Objects.requireNonNull(compressed, "compressed");
        Objects.requireNonNull(mediaType, "mediaType");
        Codec codec = CODECS.get(mediaType);
        if (codec == null) {
            throw new InvalidImageException("unsupported layer media type \"" + mediaType + "\"");
        }
        return switch (codec) {
            case NONE -> compressed;
            case GZIP -> gzip(compressed);
            case ZSTD -> new ZstdInputStream(compressed);
        };
    }

    private static InputStream gzip(InputStream compressed) throws IOException {
        try {
            return new GzipErrors(GzipCompressorInputStream.builder()
                    .setInputStream(compressed)
                    .setDecompressConcatenated(true)
                    .get());
        } catch (IOException e) {
            throw GzipErrors.named(e);
        }
    }

    /**
     * commons-compress reports a cut gzip stream as an {@link EOFException} without a message, and a damaged one
     * with a message that does not say it is about gzip: the layer's error must say both.
     */
    private static final class GzipErrors extends FilterInputStream {

        GzipErrors(InputStream in) {
            super(in);
        }

        @Override
        public int read() throws IOException {
            try {
                return super.read();
            } catch (IOException e) {
                throw named(e);
            }
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            try {
                return super.read(b, off, len);
            } catch (IOException e) {
                throw named(e);
            }
        }

        static IOException named(IOException e) {
            if (e instanceof EOFException) {
                return new IOException("gzip: truncated stream: the input ends inside a member", e);
            }
            return new IOException("gzip: corrupt stream: " + e.getMessage(), e);
        }
    }
}
