package org.shimmer.runtime.linux.layer;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.util.Objects;

/**
 * Decompresses a zstd stream (one frame or several, one after the other) with the system's libzstd
 * ({@code ZSTD_decompressStream}).
 *
 * <p>Invariants: the stream ends only where a frame ends; input that stops inside a frame is an {@link IOException}
 * ("truncated"), never a silent short layer. A corrupt frame is an {@link IOException} naming zstd's error. The
 * native stream and buffers are freed exactly once, by the first {@link #close()}, which also closes the source.
 */
public final class ZstdInputStream extends InputStream {

    /** {@code ZSTD_inBuffer} and {@code ZSTD_outBuffer} have the same shape: a pointer, a size and a position. */
    private static final StructLayout BUFFER = MemoryLayout.structLayout(
            ValueLayout.ADDRESS.withName("data"),
            ValueLayout.JAVA_LONG.withName("size"),
            ValueLayout.JAVA_LONG.withName("pos"));
    private static final long SIZE = 8;
    private static final long POS = 16;

    private final InputStream source;
    private final Zstd zstd;
    private final Arena arena;
    private final MemorySegment stream;
    private final MemorySegment input;
    private final MemorySegment output;
    private final MemorySegment inBuffer;
    private final MemorySegment outBuffer;
    private final byte[] heap;
    private long outputRead;
    private long outputFilled;
    private boolean outputWasFull;
    /** The last {@code ZSTD_decompressStream} result: 0 exactly when the frames so far are complete and flushed. */
    private long lastResult = 1;
    private boolean closed;

    /** Reads zstd frames from {@code source}, which this stream then owns. */
    public ZstdInputStream(InputStream source) throws IOException {
        this.source = Objects.requireNonNull(source, "source");
        this.zstd = Zstd.library();
        this.arena = Arena.ofShared();
        try {
            this.stream = (MemorySegment) zstd.createDStream.invokeExact();
            if (stream.equals(MemorySegment.NULL)) {
                throw new IOException("zstd: ZSTD_createDStream failed (out of memory)");
            }
            long init = (long) zstd.initDStream.invokeExact(stream);
            if (zstd.isError(init)) {
                long ignored = (long) zstd.freeDStream.invokeExact(stream);
                throw new IOException("zstd: ZSTD_initDStream: " + zstd.errorName(init));
            }
        } catch (IOException | RuntimeException | Error e) {
            arena.close();
            throw e;
        } catch (Throwable t) {
            arena.close();
            throw new IllegalStateException(t);
        }
        this.input = arena.allocate(zstd.inSize);
        this.output = arena.allocate(zstd.outSize);
        this.inBuffer = arena.allocate(BUFFER);
        this.outBuffer = arena.allocate(BUFFER);
        inBuffer.set(ValueLayout.ADDRESS, 0, input);
        outBuffer.set(ValueLayout.ADDRESS, 0, output);
        outBuffer.set(ValueLayout.JAVA_LONG, SIZE, zstd.outSize);
        this.heap = new byte[(int) zstd.inSize];
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        int n = read(one, 0, 1);
        return n < 0 ? -1 : Byte.toUnsignedInt(one[0]);
    }

    @Override
    public synchronized int read(byte[] b, int off, int len) throws IOException {
        Objects.checkFromIndexSize(off, len, b.length);
        if (closed) {
            throw new IOException("zstd stream is closed");
        }
        if (len == 0) {
            return 0;
        }
        while (outputRead == outputFilled) {
            boolean inputUsed = inBuffer.get(ValueLayout.JAVA_LONG, POS) == inBuffer.get(ValueLayout.JAVA_LONG, SIZE);
            // A full output buffer may hide more output for the input already given: ask again before reading.
            // Not once a frame is flushed (result 0): then nothing hides, and asking again with no input would
            // return 0 bytes forever; a stream of exactly n output buffers was reported truncated.
            if (inputUsed && (!outputWasFull || lastResult == 0)) {
                int n = source.read(heap);
                if (n < 0) {
                    if (lastResult == 0) {
                        return -1;
                    }
                    throw new IOException("zstd: truncated stream: the input ends inside a frame");
                }
                MemorySegment.copy(heap, 0, input, ValueLayout.JAVA_BYTE, 0, n);
                inBuffer.set(ValueLayout.JAVA_LONG, SIZE, n);
                inBuffer.set(ValueLayout.JAVA_LONG, POS, 0L);
            }
            outBuffer.set(ValueLayout.JAVA_LONG, POS, 0L);
            long result;
            try {
                result = (long) zstd.decompressStream.invokeExact(stream, outBuffer, inBuffer);
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
            if (zstd.isError(result)) {
                throw new IOException("zstd: corrupt stream: " + zstd.errorName(result));
            }
            lastResult = result;
            outputRead = 0;
            outputFilled = outBuffer.get(ValueLayout.JAVA_LONG, POS);
            outputWasFull = outputFilled == zstd.outSize;
        }
        int n = (int) Math.min(len, outputFilled - outputRead);
        MemorySegment.copy(output, ValueLayout.JAVA_BYTE, outputRead, b, off, n);
        outputRead += n;
        return n;
    }

    @Override
    public synchronized void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        try {
            long ignored = (long) zstd.freeDStream.invokeExact(stream);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        } finally {
            arena.close();
            source.close();
        }
    }
}
