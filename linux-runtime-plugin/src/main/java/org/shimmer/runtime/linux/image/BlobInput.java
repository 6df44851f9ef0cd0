package org.shimmer.runtime.linux.image;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.concurrent.CancellationException;
import java.util.function.BooleanSupplier;
import java.util.function.LongConsumer;
import org.shimmer.runtime.image.InvalidImageException;

/**
 * A stream that hashes what passes through it with sha256 and, given a declared size, never reads past it.
 *
 * <p>Invariant: no more than the declared size is ever read from a blob, so a blob that lies about its size
 * (the "huge declared size", or a file that grows while read) costs at most what its descriptor
 * admits; one byte more fails at once. The check of the digest is {@link #verify()}, after the end. Every read
 * first asks whether the import was cancelled, so a cancel stops at the next chunk.
 */
final class BlobInput extends FilterInputStream {

    private static final HexFormat HEX = HexFormat.of();

    private final String what;
    private final String expected;
    private final long size;
    private final BooleanSupplier cancelled;
    private final LongConsumer progress;
    private final MessageDigest sha256;
    private long read;
    private String actual;

    /**
     * @param what the blob for messages, e.g. "blob sha256:… of layout /x"
     * @param expected the digest it must have, {@code sha256:<hex>}
     * @param size its declared size, or -1 for none
     * @param cancelled asked before every read
     * @param progress told the bytes of each read
     */
    BlobInput(InputStream in, String what, String expected, long size, BooleanSupplier cancelled,
            LongConsumer progress) {
        super(in);
        this.what = what;
        this.expected = expected;
        this.size = size;
        this.cancelled = cancelled;
        this.progress = progress;
        this.sha256 = sha256();
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        int n = read(one, 0, 1);
        return n < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] buffer, int offset, int length) throws IOException {
        if (cancelled.getAsBoolean()) {
            throw new CancellationException("import cancelled while reading " + what);
        }
        if (length == 0) {
            return 0;
        }
        if (size >= 0 && read == size) {
            if (in.read() >= 0) {
                throw new InvalidImageException(what + ": larger than its declared size " + size);
            }
            return -1;
        }
        int n = in.read(buffer, offset, size < 0 ? length : (int) Math.min(length, size - read));
        if (n < 0) {
            if (size >= 0) {
                throw new InvalidImageException(what + ": " + read + " bytes, shorter than its declared size "
                        + size);
            }
            return -1;
        }
        sha256.update(buffer, offset, n);
        read += n;
        progress.accept(n);
        return n;
    }

    @Override
    public long skip(long n) throws IOException {
        // Skipped bytes must still be hashed.
        byte[] buffer = new byte[(int) Math.min(n, 8192)];
        int skipped = read(buffer, 0, buffer.length);
        return Math.max(skipped, 0);
    }

    @Override
    public int available() {
        return 0;
    }

    @Override
    public boolean markSupported() {
        return false;
    }

    /** Reads what is left to the end, then checks the size and the digest; again, the same answer. */
    void verify() throws IOException {
        if (actual == null) {
            byte[] buffer = new byte[64 * 1024];
            while (read(buffer, 0, buffer.length) >= 0) {
                // Draining: every byte counts in the digest.
            }
            actual = "sha256:" + HEX.formatHex(sha256.digest());
        }
        if (!actual.equals(expected)) {
            throw new InvalidImageException(what + ": digest mismatch: expected " + expected + ", actual " + actual);
        }
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }

    /** The sha256 of {@code text}'s UTF-8 bytes, hex: how names and paths become file names. */
    static String sha256Hex(String text) {
        return HEX.formatHex(sha256().digest(text.getBytes(StandardCharsets.UTF_8)));
    }
}
