package org.shimmer.runtime.linux.image;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.image.ImageNames;
import org.shimmer.runtime.image.Images;
import org.shimmer.runtime.image.ImportRequest;
import org.shimmer.runtime.linux.bundle.DirectoryTrees;
import org.shimmer.runtime.linux.bundle.StorageErrors;
import org.shimmer.runtime.linux.image.ImageRecords.Stored;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.Disposable;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;

/**
 * The image store: {@link Images} over a directory, shared by every runtime view, class loader and process that
 * opens the same root. All its state is on disk:
 *
 * <pre>
 * &lt;root&gt;/lock                          flock'ed briefly around every change (never during an unpack)
 * &lt;root&gt;/layers/&lt;chain id hex&gt;/         an unpacked layer over the layers its chain id names; only
 *                                          complete, checked ones get this name
 * &lt;root&gt;/images/&lt;sha256(name) hex&gt;.json  the image record of a name, written last
 * &lt;root&gt;/tmp/&lt;random&gt;/                  an import in progress, its "owner" file flock'ed while it runs
 * &lt;root&gt;/tmp/removed-&lt;random&gt;/          a layer a remove collected, deleted after the lock is released
 * &lt;root&gt;/leases/&lt;digest hex&gt;/&lt;sha256(bundle path) hex&gt;   a container's hold on an image: the bundle
 *                                          path and the layers, flock'ed by the run until the bundle exists
 * </pre>
 *
 * Directories are 0700. The lock is taken on a descriptor opened for each acquisition ({@link FileLock}), so it
 * excludes other threads, a reloaded plugin and other processes alike. Every tree removed goes through
 * {@link DirectoryTrees}: no symlink is followed and no mount is crossed. Blocking work runs on {@code io}; an
 * import that is cancelled stops at its next chunk and deletes its scratch directory. Once the runtime closes, a
 * delete goes on for at most {@link RuntimeResources#DELETE_GRACE} and leaves the rest, dead, to the next sweep.
 */
public final class ImageStore implements Images {

    /** The annotation on a container's spec naming the manifest digest of its image: what makes a lease live. */
    public static final String DIGEST_ANNOTATION = "org.shimmer.image.digest";
    /** The annotation on a container's spec naming its image. */
    public static final String NAME_ANNOTATION = "org.shimmer.image.name";

    static final FileAttribute<Set<PosixFilePermission>> PRIVATE_DIRECTORY =
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------"));

    private static final Logger log = LoggerFactory.getLogger(ImageStore.class);

    private final Path root;
    private final Scheduler io;
    private final RuntimeResources resources;
    private final ImageRecords records;
    private final Leases leases;
    private final Duration deleteGrace;

    /** A store whose blocking work runs on {@code io}, its imports stopped only by their subscribers. */
    public ImageStore(Path root, Scheduler io) {
        this(root, io, null);
    }

    /**
     * The store of a runtime: its blocking work runs on the runtime's {@code io}, and the imports running when
     * {@code resources} begin to close are stopped at their next read (they fail with
     * {@link UnavailableException} and delete their scratch), as nothing of a stopped plugin may go on.
     */
    public ImageStore(Path root, RuntimeResources resources) {
        this(root, resources, RuntimeResources.DELETE_GRACE);
    }

    /** The store of a runtime whose deletes go on for {@code deleteGrace} once it closes; tests shorten it. */
    ImageStore(Path root, RuntimeResources resources, Duration deleteGrace) {
        this(root, resources.io(), resources, deleteGrace);
    }

    private ImageStore(Path root, Scheduler io, RuntimeResources resources) {
        this(root, io, resources, RuntimeResources.DELETE_GRACE);
    }

    private ImageStore(Path root, Scheduler io, RuntimeResources resources, Duration deleteGrace) {
        this.root = root.toAbsolutePath().normalize();
        this.io = io;
        this.resources = resources;
        this.records = new ImageRecords(this.root.resolve("images"));
        this.leases = new Leases(this.root.resolve("leases"));
        this.deleteGrace = deleteGrace;
    }

    /**
     * What the deletes of an import or remove ask between entries: whether their runtime began to close at least
     * the grace ago. Counted from the close, one moment for every delete: counted from when each delete first saw
     * the close, a remove that waited for the store's lock (or an io task queued behind busy threads) meanwhile
     * began its deletes after the grace had run out and deleted on for a whole grace more, after the stop.
     * Stateless, so any thread may ask. Never, for a store without a runtime.
     */
    BooleanSupplier deletesStopped() {
        if (resources == null) {
            return () -> false;
        }
        return () -> resources.closedFor(deleteGrace);
    }

    @Override
    public Mono<Image> importLayout(ImportRequest request) {
        return Mono.create(sink -> {
            // Cancellation is a flag read at every chunk, not an interrupt: an interrupted channel read would
            // close the file under the import and leave its error to be dropped.
            AtomicBoolean cancelled = new AtomicBoolean();
            sink.onCancel(() -> cancelled.set(true));
            // A runtime that closes stops its imports at once: the io scheduler's close used to wait for one, then
            // interrupt it, and as no read is interruptible it unpacked on into the store after the plugin stopped.
            AtomicBoolean closing = new AtomicBoolean();
            if (resources != null) {
                Disposable stop = resources.track(() -> closing.set(true));
                sink.onDispose(() -> resources.untrack(stop));
            }
            try {
                io.schedule(() -> {
                    try {
                        sink.success(new ImageImport(this, request, () -> cancelled.get() || closing.get()).run());
                    } catch (Throwable t) {
                        if (cancelled.get()) {
                            return;
                        }
                        sink.error(t instanceof CancellationException && closing.get()
                                ? new UnavailableException("import of " + request.layout()
                                        + " stopped: the runtime closed while it ran", t)
                                : typed("import " + request.layout(), t));
                    }
                });
            } catch (RuntimeException rejected) {
                sink.error(typed("import " + request.layout(), rejected));
            }
        });
    }

    @Override
    public Flux<Image> list() {
        return blocking("list images", () -> records.all().stream().map(Stored::image).toList())
                .flatMapIterable(images -> images);
    }

    @Override
    public Mono<Image> get(String name) {
        return Mono.defer(() -> {
            String normalized = ImageNames.normalize(name);
            return blocking("get image " + normalized, () -> {
                Stored stored = records.read(normalized);
                if (stored == null) {
                    throw new NotFoundException("no image named " + normalized);
                }
                return stored.image();
            });
        });
    }

    @Override
    public Mono<Void> remove(String name) {
        return Mono.defer(() -> {
            String normalized = ImageNames.normalize(name);
            return blocking("remove image " + normalized, () -> {
                removeNow(normalized);
                return true;
            }).then();
        });
    }

    /**
     * Records that the container whose bundle is {@code bundleDir} runs from {@code image}: while the returned
     * lease is open, and then while that bundle exists with {@link #DIGEST_ANNOTATION} equal to the image's
     * digest, the image cannot be removed and its layers stay. The caller closes the lease once the bundle's
     * {@code config.json} exists, or after its rollback: closing it is all a failed run does, as its lease file,
     * unlocked and without a bundle, is stale and goes at the next remove. There is no call that deletes a lease: one
     * by digest and bundle ({@code unlease}) deleted the file another run of the same bundle still held locked, and a
     * remove then took that run's layers. Fails with
     * {@link NotFoundException} when no image of that digest is in the store (removed since it was got).
     */
    public Mono<ImageLease> lease(Image image, Path bundleDir) {
        // Taken for a run cancelled meanwhile, a lease is let go, not left locked until the JVM exits.
        return blocking("lease image " + image.name() + " for " + bundleDir, () -> {
            prepare();
            try (FileLock _ = lock()) {
                Stored stored = records.all().stream()
                        .filter(record -> record.image().digest().equals(image.digest()))
                        .filter(record -> record.image().name().equals(image.name()))
                        .findFirst()
                        .orElseGet(() -> byDigest(image.digest()));
                if (stored == null) {
                    throw new NotFoundException("image " + image.name() + " (" + image.digest()
                            + ") is not in the image store " + root);
                }
                List<Path> layers = new ArrayList<>();
                List<String> chainIds = chainIds(stored.image().layers());
                for (int i = 0; i < chainIds.size(); i++) {
                    Path layer = layer(chainIds.get(i));
                    if (!Files.isDirectory(layer, LinkOption.NOFOLLOW_LINKS)) {
                        throw new NotFoundException("image " + image.name() + ": layer " + stored.image().layers()
                                .get(i) + " (chain id " + chainIds.get(i) + ") is missing from the image store "
                                + root + "; import the image again");
                    }
                    layers.add(layer);
                }
                FileLock pending = leases.add(image.digest(), bundleDir.toAbsolutePath().normalize(), chainIds);
                return new ImageLease(image.digest(), stored.image().name(), stored.image().config(), layers,
                        pending);
            }
        }).doOnDiscard(ImageLease.class, ImageLease::close);
    }

    private Stored byDigest(String digest) {
        try {
            return records.all().stream().filter(record -> record.image().digest().equals(digest)).findFirst()
                    .orElse(null);
        } catch (IOException e) {
            throw typed("read the image records of " + root, e);
        }
    }

    /**
     * Under the lock: refused while a container holds the image and no other name keeps its digest; then the
     * record goes, and the layers are collected by mark and sweep: kept are those of every remaining record, every
     * running import's claims and every live lease (a lease lists its layers: the name it was taken under may have
     * moved to another digest since, and a record-only count once took the base layer of a running container);
     * every other directory of {@code layers/}, the removed image's and any an earlier crash orphaned, is moved
     * into {@code tmp/} (so a crash midway leaves it to the sweep) and deleted after the lock is released.
     */
    private void removeNow(String name) throws IOException {
        prepare();
        List<Path> doomed = new ArrayList<>();
        Scratch.Swept swept = null;
        BooleanSupplier stopped = deletesStopped();
        try {
            try (FileLock _ = lock()) {
                swept = Scratch.sweep(tmp());
                records.sweepTemporaries();
                removeLocked(name, swept, doomed);
            }
        } catch (NotFoundException unknown) {
            // What it collected is dead under tmp/: deleted now, a failure only logged, as a sweep's.
            try {
                deleteCollected(doomed, stopped);
            } catch (IOException | RuntimeException failed) {
                log.warn("remove of unknown image {}: could not delete the layers it collected", name, failed);
            }
            throw unknown;
        } finally {
            // A refused or unknown remove still deletes what dead imports left: a Ctrl-C'd import's gigabytes
            // otherwise waited for the next import or successful remove.
            if (swept != null) {
                swept.deleteDead(stopped);
            }
        }
        deleteCollected(doomed, stopped);
    }

    /**
     * Deletes the layers a remove moved into {@code tmp/}. Cut by a stop, the remove still succeeded: its record is
     * gone, and what is left of its layers is dead under {@code tmp/}, for the next sweep.
     */
    private static void deleteCollected(List<Path> doomed, BooleanSupplier stopped) throws IOException {
        for (Path gone : doomed) {
            if (!DirectoryTrees.deleteRecursively(gone, stopped)) {
                Scratch.logStopped(gone);
                return;
            }
        }
    }

    /** The part of {@link #removeNow} under the lock; adds the layers it moved out to {@code doomed}. */
    private void removeLocked(String name, Scratch.Swept swept, List<Path> doomed) throws IOException {
        Stored stored;
        try {
            stored = records.read(name);
        } catch (ImageRecords.Damaged damaged) {
            // Its digest and layers are unknown: the name goes, its layers wait for a remove that can tell them. A
            // live lease lists its container's layers, so they stay in any case; one written before leases listed
            // them is kept only through its image's record, which may be this one: the remove waits for it.
            List<Path> unlisted = leases.all().values().stream().flatMap(List::stream)
                    .filter(live -> live.layers().isEmpty()).map(Leases.Live::bundle).toList();
            if (!unlisted.isEmpty()) {
                throw new FailedPreconditionException("image " + name + "'s record is damaged, and it may be in use"
                        + " by " + String.join(", ", unlisted.stream().map(ImageStore::container).toList())
                        + " (leases that name no layers): remove it once they are gone", damaged);
            }
            log.warn("removing the damaged record of image {}; no layer is collected", name, damaged);
            records.delete(name);
            return;
        }
        if (stored == null) {
            // Nothing to remove, but what nothing names goes (the layers an import renamed in before it failed for
            // lack of space, or was killed): with no other image to remove, no call freed that space.
            collect(name, records.scan(), leases.all(), swept, doomed);
            throw new NotFoundException("no image named " + name);
        }
        ImageRecords.Scan scan = records.scan();
        List<Stored> all = scan.records();
        Map<String, List<Leases.Live>> leased = leases.all();
        boolean digestKept = all.stream().anyMatch(other -> !other.image().name().equals(name)
                && other.image().digest().equals(stored.image().digest()));
        List<Leases.Live> users = leased.getOrDefault(stored.image().digest(), List.of());
        if (!digestKept && !users.isEmpty()) {
            throw new FailedPreconditionException("image " + name + " is in use by "
                    + (users.size() == 1 ? "container " : "containers ")
                    + String.join(", ", users.stream().map(user -> container(user.bundle())).toList()));
        }
        records.delete(name);
        collect(name, scan, leased, swept, doomed);
    }

    /**
     * Moves every directory of {@code layers/} that no record but {@code name}'s, running import or live lease names
     * into {@code tmp/}, adding it to {@code doomed}; none while a record is damaged. Under the lock.
     */
    private void collect(String name, ImageRecords.Scan scan, Map<String, List<Leases.Live>> leased,
            Scratch.Swept swept, List<Path> doomed) throws IOException {
        List<Stored> all = scan.records();
        Set<String> keep = new HashSet<>(swept.claimed());
        for (Stored other : all) {
            if (!other.image().name().equals(name)) {
                keep.addAll(chainIds(other.image().layers()));
            }
        }
        leased.forEach((digest, lives) -> {
            for (Leases.Live live : lives) {
                keep.addAll(live.layers());
                if (live.layers().isEmpty()) {
                    // A lease written before leases listed their layers: its digest's records tell them, as
                    // chain ids and as diff ids (a container started before layers were named by chain id
                    // runs on the diff-id directories).
                    all.stream().filter(record -> record.image().digest().equals(digest))
                            .forEach(record -> {
                                keep.addAll(chainIds(record.image().layers()));
                                keep.addAll(record.image().layers());
                            });
                }
            }
        });
        if (!scan.damaged().isEmpty()) {
            // Which layers a damaged record names is unknown: collecting now could take its image's layers.
            log.warn("remove of image {}: no layer is collected while the records {} are damaged", name,
                    scan.damaged());
            return;
        }
        try (DirectoryStream<Path> layers = Files.newDirectoryStream(root.resolve("layers"))) {
            for (Path layer : layers) {
                if (!keep.contains("sha256:" + layer.getFileName())) {
                    doomed.add(Scratch.remove(tmp(), layer));
                }
            }
        }
    }

    /** A bundle as its container is known: {@code namespace/id} (the bundle's last two names) and its path. */
    private static String container(Path bundle) {
        int names = bundle.getNameCount();
        String id = names >= 2 ? bundle.getName(names - 2) + "/" + bundle.getFileName() : bundle.toString();
        return id + " (bundle " + bundle + ")";
    }

    /**
     * Makes the store's directories (0700) if absent, and refuses any that is not a directory of its own: a sweep
     * deletes every dead entry of {@code tmp/} and a remove every unkept one of {@code layers/}, so a symlink there
     * (to "move it to a bigger disk") had the first import delete whatever the link pointed at.
     */
    void prepare() throws IOException {
        for (String dir : List.of("layers", "images", "tmp", "leases")) {
            Path path = root.resolve(dir);
            Files.createDirectories(path, PRIVATE_DIRECTORY);
            if (!Files.isDirectory(path, LinkOption.NOFOLLOW_LINKS)) {
                throw new FailedPreconditionException("image store directory " + path + " is "
                        + (Files.isSymbolicLink(path) ? "a symlink" : "not a directory")
                        + ": the store deletes what it finds there, so it uses only a directory of its own");
            }
        }
    }

    FileLock lock() throws IOException {
        return FileLock.acquire(root.resolve("lock"));
    }

    Path tmp() {
        return root.resolve("tmp");
    }

    /** The directory of the layer whose chain id is {@code chainId}. */
    Path layer(String chainId) {
        return root.resolve("layers").resolve(chainId.substring(chainId.indexOf(':') + 1));
    }

    /**
     * The chain ids of an image's layers, bottom first (OCI's: the first layer's is its diff id, each next one
     * {@code sha256(<chain id below> + " " + <diff id>)}): what a layer directory is named by. A directory depends
     * on the layers below it, not only on its own tar: one the tar makes only as a parent takes their attributes
     * (see {@code LayerUnpacker}), so the same tar over other layers is another directory, as containerd's
     * snapshots are.
     */
    static List<String> chainIds(List<String> diffIds) {
        List<String> chainIds = new ArrayList<>(diffIds.size());
        for (String diffId : diffIds) {
            chainIds.add(chainIds.isEmpty() ? diffId
                    : "sha256:" + BlobInput.sha256Hex(chainIds.getLast() + " " + diffId));
        }
        return chainIds;
    }

    ImageRecords records() {
        return records;
    }

    /**
     * The unpacked bytes of a layer already in the store, by its chain id: from a record that has it, else counted
     * on disk (regular files, without following links).
     */
    long layerBytes(String chainId) throws IOException {
        for (Stored stored : records.all()) {
            int index = chainIds(stored.image().layers()).indexOf(chainId);
            if (index >= 0 && index < stored.layerBytes().size()) {
                return stored.layerBytes().get(index);
            }
        }
        int fd = LinuxCalls.open(layer(chainId), DIRECTORY);
        try {
            return regularBytes(fd);
        } finally {
            LinuxCalls.close(fd);
        }
    }

    private static final int DIRECTORY = LinuxCalls.O_RDONLY | LinuxCalls.O_DIRECTORY | LinuxCalls.O_NOFOLLOW
            | LinuxCalls.O_CLOEXEC;

    /**
     * The bytes of the regular files under the directory {@code fd}, nothing followed. Every path is short, through
     * the descriptor of its directory: a layer may hold names up to {@code PATH_MAX} long, which under the store's
     * root are longer, and a walk by full paths failed with "File name too long".
     */
    private static long regularBytes(int fd) throws IOException {
        long bytes = 0;
        Path dir = Path.of("/proc/self/fd/" + fd);
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
            for (Path entry : entries) {
                PosixFileAttributes attributes = Files.readAttributes(entry, PosixFileAttributes.class,
                        LinkOption.NOFOLLOW_LINKS);
                if (attributes.isRegularFile()) {
                    bytes += attributes.size();
                } else if (attributes.isDirectory()) {
                    int child = LinuxCalls.open(entry, DIRECTORY);
                    try {
                        bytes += regularBytes(child);
                    } finally {
                        LinuxCalls.close(child);
                    }
                }
            }
        }
        return bytes;
    }

    private <T> Mono<T> blocking(String what, IoCall<T> call) {
        return Mono.fromCallable(call::call).subscribeOn(io).onErrorMap(t -> typed(what, t));
    }

    @FunctionalInterface
    private interface IoCall<T> {
        T call() throws IOException;
    }

    /** Every failure as the API's types: I/O by its errno ({@code ENOSPC}: resource exhausted). */
    private static RuntimeException typed(String what, Throwable failure) {
        return switch (failure) {
            case ShimmerException e -> e;
            case CancellationException e -> e;
            case IOException e -> StorageErrors.typed(what, e);
            default -> StorageErrors.typed(what, new IOException(failure.toString(), failure));
        };
    }
}
