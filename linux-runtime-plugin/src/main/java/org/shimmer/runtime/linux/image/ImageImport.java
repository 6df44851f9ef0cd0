package org.shimmer.runtime.linux.image;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.function.BooleanSupplier;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.image.ImportProgress;
import org.shimmer.runtime.image.ImportRequest;
import org.shimmer.runtime.image.InvalidImageException;
import org.shimmer.runtime.linux.image.ImageRecords.Stored;
import org.shimmer.runtime.linux.layer.Decompression;
import org.shimmer.runtime.linux.layer.LayerContents;
import org.shimmer.runtime.linux.layer.LayerUnpacker;
import org.shimmer.runtime.linux.sys.LinuxCalls;

/**
 * One import, run on a blocking thread: layout → manifest → layers → record.
 *
 * <p>Invariant: nothing outside the import's scratch directory changes until it is complete and checked. A layer
 * is unpacked into scratch over the store's directories of the layers below it, both its digests (the compressed
 * blob's and the diff id of the tar) checked at the end, and only then renamed into {@code layers/<chain id hex>}
 * under the store's lock (when another import got
 * there first, ours is dropped); the image record is written last. So a killed or failed import leaves at most
 * complete layers and a scratch directory the next sweep deletes, and nothing lists as imported. A layer's file
 * system is synced ({@code syncfs}) before the rename: the record, synced itself, never names a layer whose
 * files a power loss could still leave empty. A layer already in the store is not unpacked again, but its blob is
 * still hashed: a layout is accepted or refused whatever the store holds.
 */
final class ImageImport {

    private static final long MIB = 1 << 20;

    private final ImageStore store;
    private final ImportRequest request;
    private final BooleanSupplier cancelled;

    ImageImport(ImageStore store, ImportRequest request, BooleanSupplier cancelled) {
        this.store = store;
        this.request = request;
        this.cancelled = cancelled;
    }

    Image run() throws IOException {
        store.prepare();
        Scratch scratch;
        Scratch.Swept swept;
        // Both deletes stop at the same moment: the grace after the runtime began to close.
        BooleanSupplier deletesStopped = store.deletesStopped();
        try (FileLock _ = store.lock()) {
            swept = Scratch.sweep(store.tmp());
            store.records().sweepTemporaries();
            scratch = Scratch.create(store.tmp(), deletesStopped);
        }
        try (scratch) {
            swept.deleteDead(deletesStopped);
            Layout layout = Layout.open(request.layout(), scratch.dir(), cancelled);
            Layout.Resolved resolved = layout.resolve(request.name());
            List<String> chainIds = ImageStore.chainIds(resolved.diffIds());
            List<Boolean> present = new ArrayList<>();
            try (FileLock _ = store.lock()) {
                scratch.claim(chainIds);
                for (String chainId : chainIds) {
                    present.add(Files.isDirectory(store.layer(chainId), LinkOption.NOFOLLOW_LINKS));
                }
            }
            // No shortcut for an image already imported: its blobs are checked as any other layout's, so what a
            // layout must hold does not depend on what the store holds.
            List<Long> layerBytes = layers(layout, resolved, chainIds, present, scratch);
            Image image = new Image(resolved.name(), resolved.manifest().digest(), resolved.config(),
                    resolved.diffIds(), layerBytes.stream().mapToLong(Long::longValue).sum(), Instant.now());
            try (FileLock _ = store.lock()) {
                // Nothing is written once the import was cancelled or its runtime closed, the record neither.
                checkNotCancelled();
                Stored now;
                try {
                    now = store.records().read(image.name());
                } catch (ImageRecords.Damaged damaged) {
                    // Importing the image again is how its damaged record is repaired: it is written over.
                    now = null;
                }
                if (now != null && now.image().digest().equals(image.digest())) {
                    return now.image();
                }
                store.records().write(new Stored(image, layerBytes));
            }
            return image;
        }
    }

    /**
     * Unpacks the missing layers, each over the ones below it, and hashes the blobs of the others (a layer already
     * in the store still needs its blob in the layout, of a type this reads and of its digest); returns the unpacked
     * bytes of every layer.
     */
    private List<Long> layers(Layout layout, Layout.Resolved resolved, List<String> chainIds, List<Boolean> present,
            Scratch scratch) throws IOException {
        List<Descriptor> layers = resolved.layers();
        for (int i = 0; i < layers.size(); i++) {
            Descriptor layer = layers.get(i);
            if (!Decompression.supports(layer.mediaType())) {
                throw new InvalidImageException(what(layer, resolved.diffIds().get(i))
                        + ": unsupported layer media type \"" + layer.mediaType() + "\"");
            }
        }
        long total = layers.stream().mapToLong(Descriptor::size).sum();
        Progress progress = new Progress(layers.size(), total);
        List<Long> bytes = new ArrayList<>();
        List<Path> lowers = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) {
            Descriptor layer = layers.get(i);
            String diffId = resolved.diffIds().get(i);
            progress.layer = diffId;
            if (present.get(i)) {
                try (BlobInput blob = layout.blob(layer, progress::add)) {
                    blob.verify();
                }
                bytes.add(store.layerBytes(chainIds.get(i)));
            } else {
                bytes.add(unpack(layout, layer, diffId, chainIds.get(i), lowers,
                        scratch.dir().resolve("layer-" + i), progress));
            }
            lowers.addFirst(store.layer(chainIds.get(i)));
            progress.layersDone++;
            progress.report();
        }
        return bytes;
    }

    /** Unpacks {@code layer} over {@code lowers} (top first) into {@code target}, then renames it into the store. */
    private long unpack(Layout layout, Descriptor layer, String diffId, String chainId, List<Path> lowers, Path target,
            Progress progress) throws IOException {
        Files.createDirectory(target);
        LayerContents contents;
        try (BlobInput blob = layout.blob(layer, progress::add)) {
            String what = what(layer, diffId);
            // Closed after the catch: the blob must still be readable there.
            BlobInput tar = null;
            try {
                tar = new BlobInput(decompressed(blob, layer.mediaType(), what), what, diffId, -1, cancelled,
                        n -> {});
                contents = LayerUnpacker.unpack(tar, target, diffId, lowers);
                tar.verify();
                blob.verify();
            } catch (IOException | RuntimeException e) {
                throw blobFirst(blob, e);
            } finally {
                if (tar != null) {
                    tar.close();
                }
            }
        }
        checkNotCancelled();
        syncFileSystem(target);
        Path destination = store.layer(chainId);
        try (FileLock _ = store.lock()) {
            // Asked again under the lock: a sync of a large layer, or a wait for the lock, takes long enough for a
            // plugin stop to come meanwhile, and the layer was renamed in after it.
            checkNotCancelled();
            if (!Files.isDirectory(destination, LinkOption.NOFOLLOW_LINKS)) {
                Files.move(target, destination, StandardCopyOption.ATOMIC_MOVE);
                ImageRecords.syncDirectory(destination.getParent());
            }
        } catch (FileAlreadyExistsException | DirectoryNotEmptyException e) {
            // Another import renamed the same layer in first; ours goes with the scratch directory.
        }
        return contents.bytes();
    }

    private void checkNotCancelled() {
        if (cancelled.getAsBoolean()) {
            throw new CancellationException("import of " + request.layout() + " cancelled");
        }
    }

    /** How a layer is named in errors. */
    private String what(Descriptor layer, String diffId) {
        return "layer " + layer.digest() + " of layout " + request.layout() + " (diff id " + diffId + ")";
    }

    /** Writes out the dirty pages of the file system {@code dir} is on: one call per layer, not one per file. */
    private static void syncFileSystem(Path dir) throws IOException {
        int fd = LinuxCalls.open(dir, LinuxCalls.O_RDONLY | LinuxCalls.O_DIRECTORY | LinuxCalls.O_NOFOLLOW
                | LinuxCalls.O_CLOEXEC);
        try {
            LinuxCalls.syncfs(fd);
        } finally {
            LinuxCalls.close(fd);
        }
    }

    /**
     * The error to report when reading a layer failed with {@code failure}: when the blob itself does not match
     * its digest, that, as every later error (a gzip stream that does not decode, a tar entry refused, a diff id
     * that does not match) only follows from it; else {@code failure}.
     */
    private static RuntimeException blobFirst(BlobInput blob, Exception failure) throws IOException {
        if (!(failure instanceof CancellationException)) {
            try {
                blob.verify();
            } catch (InvalidImageException mismatch) {
                mismatch.addSuppressed(failure);
                return mismatch;
            } catch (IOException | RuntimeException unreadable) {
                failure.addSuppressed(unreadable);
            }
        }
        return switch (failure) {
            case IOException e -> throw e;
            case RuntimeException e -> e;
            default -> new IllegalStateException(failure);
        };
    }

    private static InputStream decompressed(InputStream blob, String mediaType, String what) throws IOException {
        try {
            return new ContentErrors(Decompression.open(blob, mediaType), what);
        } catch (IOException e) {
            throw new InvalidImageException(what + ": cannot be decompressed: " + e.getMessage(), e);
        }
    }

    /**
     * A decompressed layer: a stream that does not decode (bad gzip or zstd data in a blob whose digest is right)
     * is an error of the image, named, not of the storage.
     */
    private static final class ContentErrors extends FilterInputStream {
        private final String what;

        ContentErrors(InputStream in, String what) {
            super(in);
            this.what = what;
        }

        @Override
        public int read() throws IOException {
            try {
                return super.read();
            } catch (IOException e) {
                throw new InvalidImageException(what + ": cannot be decompressed: " + e.getMessage(), e);
            }
        }

        @Override
        public int read(byte[] buffer, int offset, int length) throws IOException {
            try {
                return super.read(buffer, offset, length);
            } catch (IOException e) {
                throw new InvalidImageException(what + ": cannot be decompressed: " + e.getMessage(), e);
            }
        }
    }

    /** The progress reported to the request: at each MiB of compressed bytes, and at each layer's end. */
    private final class Progress {
        private final int layers;
        private final long bytes;
        private String layer = "";
        private int layersDone;
        private long bytesDone;
        private long reportedMib;

        Progress(int layers, long bytes) {
            this.layers = layers;
            this.bytes = bytes;
        }

        void add(long n) {
            bytesDone += n;
            if (bytesDone / MIB > reportedMib) {
                reportedMib = bytesDone / MIB;
                report();
            }
        }

        void report() {
            request.progress().accept(new ImportProgress(layer, layersDone, layers, bytesDone, bytes));
        }
    }
}
