package org.shimmer.runtime.linux.bundle;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.DirectoryIteratorException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.bundle.DirectoryTrees.MountCrossingException;
import org.shimmer.runtime.linux.bundle.DirectoryTrees.WalkObserver;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.MountTable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.scheduler.Scheduler;

/**
 * OCI bundles on disk: {@code <stateRoot>/<namespace>/<id>/{rootfs/,config.json}} and the work directory
 * {@code <workRoot>/<namespace>/<id>/}.
 *
 * <p>Invariants:
 * <ul>
 *   <li>a namespace or id becomes a path component only after {@link Identifiers} accepted it;</li>
 *   <li>a bundle is complete exactly when its {@code config.json} exists: it is written last, by an atomic
 *       rename, so a crash mid-create leaves nothing {@link #load} or {@link #list} accept;</li>
 *   <li>create rolls back exactly the paths it made, on a failure and on a cancel that comes before it returns;
 *       namespace directories are shared by every bundle of the namespace and are never removed;</li>
 *   <li>delete changes nothing while anything is mounted at or under the bundle or work directory (a running
 *       container's rootfs may be a read-write bind of the user's own directory); it then renames each tree to a
 *       hidden (never valid) name and removes it, so a crash mid-delete leaves no entry that looks like a bundle,
 *       and the next delete of that id, or the next list of its namespace, finishes the hidden trees while create
 *       ignores them;</li>
 *   <li>a delete stops between two entries once its runtime has been stopping for a grace (a tree of hundreds of
 *       thousands of files held the plugin stop for its whole timeout, then went on past it): the bundle is hidden
 *       by then, and the rest is a hidden tree as a crash leaves it;</li>
 *   <li>removal never leaves the mount it starts on and never follows a symbolic link ({@link DirectoryTrees});</li>
 *   <li>creates and deletes of one bundle run one at a time within this class loader (not across processes
 *       sharing a state root);</li>
 *   <li>every failure is a {@link org.shimmer.runtime.ShimmerException} subtype ({@link StorageErrors}).</li>
 * </ul>
 * All file work runs on the {@code io} scheduler the caller provides, never on the subscribing thread.
 */
public final class BundleStore {

    static final String CONFIG_FILE = "config.json";
    static final String ROOTFS_DIR = "rootfs";
    private static final String DELETING_MARK = ".deleting-";
    private static final int UUID_LENGTH = 36;

    /**
     * How many entries one list's sweep removes at most (about a tenth of a second on a warm ext4 here), the rest
     * left for the next list: a leftover of 200,000 files made a list, and so {@code shimmer ps}, take seconds, and
     * a cold disk could take it past a caller's timeout.
     */
    static final int SWEEP_BUDGET = 10_000;

    private static final Logger log = LoggerFactory.getLogger(BundleStore.class);

    private static final Set<PosixFilePermission> DIR_MODE = PosixFilePermissions.fromString("rwx--x--x");
    private static final Set<PosixFilePermission> CONFIG_MODE = PosixFilePermissions.fromString("rw-------");
    private static final FileAttribute<Set<PosixFilePermission>> DIR_ATTRIBUTE =
            PosixFilePermissions.asFileAttribute(DIR_MODE);
    private static final FileAttribute<Set<PosixFilePermission>> CONFIG_ATTRIBUTE =
            PosixFilePermissions.asFileAttribute(CONFIG_MODE);

    /** The steps of a create, in order; each names what was just made. */
    enum CreateStep { BUNDLE_DIR, WORK_DIR, ROOTFS_DIR, CONFIG_FILE }

    /** Observes each step of a create as it completes; tests inject failures through it. */
    @FunctionalInterface
    interface CreateObserver {
        CreateObserver NONE = (step, path) -> {};

        void created(CreateStep step, Path path) throws IOException;
    }

    /** The bundles some create or delete works on now, by bundle directory; see {@link #exclusively}. */
    private static final ConcurrentHashMap<Path, IdLock> ID_LOCKS = new ConcurrentHashMap<>();

    private final RuntimeConfig config;
    private final Scheduler io;
    private final ShimFactory shims;
    private final DeleteGuard guard;
    private final CreateObserver observer;
    private final WalkObserver walkObserver;
    private final BooleanSupplier deletesStopped;
    private final int sweepBudget;

    /**
     * @param config where bundles live
     * @param io the bounded scheduler that runs every file operation
     * @param shims what {@link Bundle#newShimClient} of this store's bundles calls
     */
    public BundleStore(RuntimeConfig config, Scheduler io, ShimFactory shims) {
        this(config, io, shims, DeleteGuard.NONE, () -> false);
    }

    /**
     * @param guard asked before a delete touches anything; refuses a bundle whose shim or container still lives
     */
    public BundleStore(RuntimeConfig config, Scheduler io, ShimFactory shims, DeleteGuard guard) {
        this(config, io, shims, guard, () -> false);
    }

    /**
     * @param deletesStopped asked between two entries of every tree a delete or a sweep removes; once it says so,
     *     the rest is left hidden (the runtime is stopping, and no interrupt reaches a native call)
     */
    public BundleStore(RuntimeConfig config, Scheduler io, ShimFactory shims, DeleteGuard guard,
            BooleanSupplier deletesStopped) {
        this(config, io, shims, guard, CreateObserver.NONE, WalkObserver.NONE, deletesStopped);
    }

    BundleStore(RuntimeConfig config, Scheduler io, ShimFactory shims, CreateObserver observer) {
        this(config, io, shims, DeleteGuard.NONE, observer, WalkObserver.NONE, () -> false);
    }

    BundleStore(RuntimeConfig config, Scheduler io, ShimFactory shims, CreateObserver observer,
            WalkObserver walkObserver) {
        this(config, io, shims, DeleteGuard.NONE, observer, walkObserver, () -> false);
    }

    BundleStore(RuntimeConfig config, Scheduler io, ShimFactory shims, WalkObserver walkObserver,
            BooleanSupplier deletesStopped) {
        this(config, io, shims, walkObserver, deletesStopped, SWEEP_BUDGET);
    }

    BundleStore(RuntimeConfig config, Scheduler io, ShimFactory shims, WalkObserver walkObserver,
            BooleanSupplier deletesStopped, int sweepBudget) {
        this(config, io, shims, DeleteGuard.NONE, CreateObserver.NONE, walkObserver, deletesStopped, sweepBudget);
    }

    private BundleStore(RuntimeConfig config, Scheduler io, ShimFactory shims, DeleteGuard guard,
            CreateObserver observer, WalkObserver walkObserver, BooleanSupplier deletesStopped) {
        this(config, io, shims, guard, observer, walkObserver, deletesStopped, SWEEP_BUDGET);
    }

    private BundleStore(RuntimeConfig config, Scheduler io, ShimFactory shims, DeleteGuard guard,
            CreateObserver observer, WalkObserver walkObserver, BooleanSupplier deletesStopped, int sweepBudget) {
        this.config = Objects.requireNonNull(config, "config");
        this.io = Objects.requireNonNull(io, "io");
        this.shims = Objects.requireNonNull(shims, "shims");
        this.guard = Objects.requireNonNull(guard, "guard");
        this.observer = Objects.requireNonNull(observer, "observer");
        this.walkObserver = Objects.requireNonNull(walkObserver, "walkObserver");
        this.deletesStopped = Objects.requireNonNull(deletesStopped, "deletesStopped");
        this.sweepBudget = sweepBudget;
    }

    ShimFactory shims() {
        return shims;
    }

    /** The configuration this store works with. */
    public RuntimeConfig config() {
        return config;
    }

    /** See {@link org.shimmer.runtime.RuntimePlugin#create}. */
    public Mono<Bundle> create(String namespace, String id, byte[] spec) {
        return Mono.defer(() -> {
            BundlePaths paths = paths(namespace, id);
            byte[] copy = spec == null ? null : spec.clone();
            // Set once, by whichever comes first: the create handing its bundle on, or a cancel. A cancelled create
            // used to finish on disk and leave a bundle nobody was given, so the next create of the id failed.
            AtomicBoolean settled = new AtomicBoolean();
            // Parsing a large spec is work the caller's thread (perhaps an event loop) must not do.
            return Mono.<Bundle>fromCallable(() -> {
                Specs.requireJsonObject(paths.name(), copy);
                return exclusively(paths, () -> createOnDisk(paths, copy, settled));
            }).subscribeOn(io).doOnCancel(() -> settled.compareAndSet(false, true));
        });
    }

    /** See {@link org.shimmer.runtime.RuntimePlugin#load}. */
    public Mono<Bundle> load(String namespace, String id) {
        return Mono.defer(() -> {
            BundlePaths paths = paths(namespace, id);
            return Mono.<Bundle>fromCallable(() -> {
                if (!isComplete(paths.bundleDir())) {
                    throw new NotFoundException("bundle " + paths.name() + " not found in " + config.stateRoot());
                }
                return bundle(paths);
            }).subscribeOn(io);
        });
    }

    /**
     * See {@link org.shimmer.runtime.RuntimePlugin#list}. Once the bundles are listed, it removes what deletes of
     * the namespace left hidden ({@link #sweepHidden}) before it completes: a delete the runtime's stop cut short
     * left its bundle out of sight, and a host does not delete again what it no longer sees. At most
     * {@link #SWEEP_BUDGET} entries per list: a list stays quick however large the leftovers.
     */
    public Flux<Bundle> list(String namespace) {
        return Flux.defer(() -> {
            Path namespaceDir = config.stateRoot().resolve(Identifiers.requireValid("namespace", namespace));
            AtomicBoolean cancelled = new AtomicBoolean();
            Path namespaceWorkDir = config.workRoot().resolve(namespace);
            return Flux.using(
                            () -> Files.newDirectoryStream(namespaceDir),
                            Flux::fromIterable,
                            BundleStore::closeQuietly)
                    .onErrorResume(NoSuchFileException.class, absent -> Flux.empty())
                    .onErrorMap(IOException.class, e -> StorageErrors.typed("list bundles of " + namespace, e))
                    .onErrorMap(DirectoryIteratorException.class,
                            e -> StorageErrors.typed("list bundles of " + namespace, e.getCause()))
                    .map(entry -> entry.getFileName().toString())
                    .filter(Identifiers::isValid)
                    .filter(id -> isComplete(namespaceDir.resolve(id)))
                    .map(id -> bundle(new BundlePaths(
                            namespace, id, namespaceDir.resolve(id), namespaceWorkDir.resolve(id))))
                    .concatWith(Mono.<Bundle>fromRunnable(() -> sweepHidden(namespace, cancelled::get)))
                    // Read between two entries: the interrupt of the cancel reaches no native call.
                    .doOnCancel(() -> cancelled.set(true));
        })
        // Moves the open and every later request, and so each directory read, onto the io scheduler.
        .subscribeOn(io);
    }

    /**
     * Deletes a bundle, complete or not: its bundle directory and its work directory, each first renamed to a
     * hidden name and then removed, and whatever an earlier delete of the id left hidden. The work directory is
     * attempted unless the bundle directory could not be renamed; an absent one is fine. The {@link DeleteGuard}
     * is asked first: a bundle in use is refused before anything changes.
     *
     * @return fails with {@link FailedPreconditionException} and changes nothing while anything is mounted at or
     *     under either directory; with {@link UnavailableException} when the runtime's stop cut the removal short
     *     (the bundle is hidden; the next delete of the id or list of the namespace removes the rest); otherwise
     *     one typed error ({@link StorageErrors}) naming every failure
     */
    public Mono<Void> delete(String namespace, String id) {
        return Mono.defer(() -> {
            BundlePaths paths = paths(namespace, id);
            return Mono.<Void>fromRunnable(() -> {
                if (!ShimStarts.beginDelete(paths.bundleDir())) {
                    throw new FailedPreconditionException("bundle " + paths.name() + " is in use: a shim is being"
                            + " started for it; nothing was deleted");
                }
                try {
                    guard.requireUnused(bundle(paths));
                    deleteOnDisk(paths);
                } finally {
                    ShimStarts.endDelete(paths.bundleDir());
                }
            }).subscribeOn(io);
        });
    }

    private BundlePaths paths(String namespace, String id) {
        Identifiers.requireValid("namespace", namespace);
        Identifiers.requireValid("id", id);
        BundlePaths paths = new BundlePaths(namespace, id,
                config.stateRoot().resolve(namespace).resolve(id),
                config.workRoot().resolve(namespace).resolve(id));
        // Roots may nest (workRoot = <stateRoot>/work): then namespace work of the state root is the work root,
        // bundle work/ns named the work directories of every container of namespace ns, and deleting that
        // never-made bundle removed them all.
        if (config.workRoot().startsWith(paths.bundleDir().getParent())
                || config.stateRoot().startsWith(paths.workDir().getParent())) {
            throw cannotExist(paths);
        }
        return paths;
    }

    private FailedPreconditionException cannotExist(BundlePaths paths) {
        return new FailedPreconditionException("bundle " + paths.name() + " cannot exist: namespace "
                + paths.namespace() + " would hold the state root " + config.stateRoot() + " or the work root "
                + config.workRoot());
    }

    /**
     * {@link #paths}' check again, on the paths the kernel resolves (blocking): a work root reached through a link
     * into the state root (or the reverse) nests the roots just as well, and deleting bundle work/ns then removed the
     * work directories of every container of namespace ns.
     */
    private void requireRootsApart(BundlePaths paths) throws IOException {
        if (resolved(config.workRoot()).startsWith(resolved(paths.bundleDir().getParent()))
                || resolved(config.stateRoot()).startsWith(resolved(paths.workDir().getParent()))) {
            throw cannotExist(paths);
        }
        WorkRootClaim.require(config.workRoot(), config.stateRoot());
    }

    /** {@code path} with its longest existing part resolved to its real path, and the rest appended as it is. */
    private static Path resolved(Path path) throws IOException {
        for (Path existing = path; existing != null; existing = existing.getParent()) {
            try {
                return existing.toRealPath().resolve(existing.relativize(path));
            } catch (NoSuchFileException absent) {
                // Its parent, then.
            }
        }
        return path;
    }

    /** Makes the bundle; null, with everything made removed again, when {@code settled} says it was cancelled. */
    private Bundle createOnDisk(BundlePaths paths, byte[] spec, AtomicBoolean settled) {
        Deque<Made> created = new ArrayDeque<>();
        // The path being worked on, for the error: the JDK names no path when a write runs out of space.
        Path current = paths.bundleDir().getParent();
        HeldDirectory bundleDir = null;
        try {
            // Before anything is made, and again once a root reached through a link that named nothing yet exists.
            requireRootsApart(paths);
            ensureDirectories(current);
            current = paths.workDir().getParent();
            ensureDirectories(current);
            requireRootsApart(paths);

            current = paths.bundleDir();
            bundleDir = createExclusiveDirectory(paths.bundleDir(), paths, "bundle");
            created.push(new Made(paths.bundleDir(), paths.bundleDir(), true));
            observer.created(CreateStep.BUNDLE_DIR, paths.bundleDir());

            // Exclusive as well: containerd#2605 reused an existing work dir here and its rollback then deleted
            // the work dir of a running container.
            current = paths.workDir();
            createExclusiveDirectory(paths.workDir(), paths, "work").close();
            created.push(new Made(paths.workDir(), paths.workDir(), true));
            observer.created(CreateStep.WORK_DIR, paths.workDir());

            // What goes into the bundle directory goes through its descriptor: a bundle directory swapped for a link
            // to a user's directory meanwhile got rootfs made in the user's directory and its config.json replaced.
            Path rootfs = paths.bundleDir().resolve(ROOTFS_DIR);
            current = rootfs;
            createDirectory(bundleDir.inside(ROOTFS_DIR), rootfs, paths).close();
            created.push(new Made(bundleDir.inside(ROOTFS_DIR), rootfs, true));
            observer.created(CreateStep.ROOTFS_DIR, rootfs);

            Path configFile = paths.bundleDir().resolve(CONFIG_FILE);
            Path partial = bundleDir.inside("." + CONFIG_FILE + ".partial");
            current = paths.bundleDir().resolve(partial.getFileName());
            created.push(new Made(partial, current, false));
            // Made 0600 (not chmod-ed later): the spec may hold secrets, and others may pass through the directory.
            try (SeekableByteChannel out = Files.newByteChannel(partial, Set.of(StandardOpenOption.CREATE_NEW,
                    StandardOpenOption.WRITE), CONFIG_ATTRIBUTE)) {
                for (ByteBuffer bytes = ByteBuffer.wrap(spec); bytes.hasRemaining(); ) {
                    out.write(bytes);
                }
            }
            // The last moment to notice: the bundle must be where its path says, or it is nobody's.
            bundleDir.requireAt(paths.bundleDir(), paths);
            Files.move(partial, bundleDir.inside(CONFIG_FILE), StandardCopyOption.ATOMIC_MOVE);
            created.pop();
            created.push(new Made(bundleDir.inside(CONFIG_FILE), configFile, false));
            observer.created(CreateStep.CONFIG_FILE, configFile);
            if (!settled.compareAndSet(false, true)) {
                rollback(created, null);
                return null;
            }
            return bundle(paths);
        } catch (IOException | RuntimeException e) {
            RuntimeException failure = e instanceof RuntimeException runtime
                    ? runtime
                    : StorageErrors.typed("create bundle " + paths.name() + " at " + current,
                            HeldDirectory.named((IOException) e, current));
            rollback(created, failure);
            throw failure;
        } finally {
            if (bundleDir != null) {
                bundleDir.close();
            }
        }
    }

    /** A directory or file a create made: the path it is removed by, and the one an error names. */
    private record Made(Path path, Path named, boolean directory) {}

    /**
     * Removes exactly what a failed or cancelled create made, newest first; a path that will not go is recorded on
     * {@code failure} (none for a cancel, which has nobody to tell), not fatal. A directory is only ever removed as
     * one: a link put in its place is not ours.
     */
    private static void rollback(Deque<Made> created, RuntimeException failure) {
        while (!created.isEmpty()) {
            Made made = created.pop();
            try {
                LinuxCalls.unlinkat(LinuxCalls.AT_FDCWD, made.path().toString().getBytes(LinuxCalls.FILE_NAMES),
                        made.directory() ? LinuxCalls.AT_REMOVEDIR : 0);
            } catch (IOException e) {
                if (failure != null && !(e instanceof LinuxCalls.ErrnoException absent
                        && absent.errno() == LinuxCalls.ENOENT)) {
                    failure.addSuppressed(new IOException("rollback could not remove " + made.named(), e));
                }
            }
        }
    }

    private HeldDirectory createExclusiveDirectory(Path dir, BundlePaths paths, String what) throws IOException {
        try {
            return createDirectory(dir, dir, paths);
        } catch (FileAlreadyExistsException e) {
            throw new AlreadyExistsException("bundle " + paths.name() + " already exists: " + what + " directory "
                    + dir + " is present; " + remedy(paths), e);
        }
    }

    /**
     * How to get rid of a bundle in the way of a create. A host that crashed or was killed leaves its bundle (and
     * perhaps its container) behind, as does a stop that cut a create midway, and a run of the same id then only
     * said "already exists", naming nothing the user could do about it.
     */
    private static String remedy(BundlePaths paths) {
        return "delete it first; if a host that crashed, was killed or was stopped midway left it, "
                + "RuntimePlugin.forceDelete(\"" + paths.namespace() + "\", \"" + paths.id()
                + "\") removes it and kills whatever of it still runs";
    }

    /** Makes {@code dir} (named {@code name} in errors) for bundle {@code paths} and holds it by descriptor. */
    private static HeldDirectory createDirectory(Path dir, Path name, BundlePaths paths) throws IOException {
        Files.createDirectory(dir, DIR_ATTRIBUTE);
        HeldDirectory held = HeldDirectory.open(dir, name, paths);
        try {
            // The attribute is filtered through the umask; set the mode the layout promises, on the directory made
            // (a link put in its place meanwhile is not followed).
            Files.setPosixFilePermissions(held.self(), DIR_MODE);
            return held;
        } catch (IOException | RuntimeException e) {
            held.close();
            throw e;
        }
    }

    private static void ensureDirectories(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            Files.createDirectories(dir, DIR_ATTRIBUTE);
        }
    }

    /**
     * A directory a create just made, held by an {@code O_PATH} descriptor: what is made through {@link #inside}
     * lands in that directory even when its path was renamed away or swapped for a link meanwhile.
     */
    private static final class HeldDirectory implements AutoCloseable {
        private static final String SELF_FD = "/proc/self/fd/";

        private final int fd;
        private boolean closed;

        private HeldDirectory(int fd) {
            this.fd = fd;
        }

        /** Opens {@code dir}, which must be a directory itself, not a link. */
        static HeldDirectory open(Path dir, Path name, BundlePaths paths) throws IOException {
            try {
                return new HeldDirectory(LinuxCalls.open(dir, LinuxCalls.O_PATH | LinuxCalls.O_NOFOLLOW
                        | LinuxCalls.O_DIRECTORY | LinuxCalls.O_CLOEXEC));
            } catch (LinuxCalls.ErrnoException e) {
                if (e.errno() == LinuxCalls.ELOOP || e.errno() == LinuxCalls.ENOTDIR
                        || e.errno() == LinuxCalls.ENOENT) {
                    throw replaced(name, paths, e);
                }
                throw e;
            }
        }

        /** The directory itself, by a path no rename or link can redirect. */
        Path self() {
            return Path.of(SELF_FD + fd);
        }

        Path inside(String entry) {
            return self().resolve(entry);
        }

        /** Refuses when {@code path} no longer names this directory (it was renamed away or replaced). */
        void requireAt(Path path, BundlePaths paths) throws IOException {
            Object here;
            try {
                here = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
            } catch (NoSuchFileException gone) {
                throw replaced(path, paths, gone);
            }
            if (!here.equals(Files.readAttributes(self(), BasicFileAttributes.class).fileKey())) {
                throw replaced(path, paths, null);
            }
        }

        private static FailedPreconditionException replaced(Path dir, BundlePaths paths, Exception cause) {
            return new FailedPreconditionException("failed to create bundle " + paths.name() + ": " + dir
                    + " was removed or replaced (by a symbolic link or another directory) meanwhile; nothing was"
                    + " made through that path, and what the create made is removed", cause);
        }

        /** {@code e} naming {@code path} instead of the descriptor path the work went through. */
        static IOException named(IOException e, Path path) {
            if (!(e instanceof FileSystemException system) || system.getFile() == null
                    || !system.getFile().startsWith(SELF_FD)) {
                return e;
            }
            FileSystemException renamed = new FileSystemException(path.toString(), null, system.getReason());
            renamed.initCause(e);
            return renamed;
        }

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                LinuxCalls.close(fd);
            }
        }
    }

    private void deleteOnDisk(BundlePaths paths) {
        exclusively(paths, () -> {
            try {
                requireRootsApart(paths);
            } catch (IOException e) {
                throw StorageErrors.typed("delete bundle " + paths.name(), e);
            }
            requireNotInUse(paths);
            removeTrees(paths);
            return null;
        });
    }

    /**
     * Runs {@code work} while no other create or delete of the same bundle runs in this class loader. A delete
     * handles the bundle directory, then the work directory; a create that slipped in between made a complete
     * bundle whose new work directory the delete then removed.
     */
    private static <T> T exclusively(BundlePaths paths, Supplier<T> work) {
        return locked(paths, true, awaited -> work.get());
    }

    /**
     * Runs {@code work} as {@link #exclusively} does, or not at all (null) when a create or delete of the bundle
     * holds its lock now: a sweep never waits behind one, nor touches the trees it works on. {@code work} is
     * given what says that a create or delete awaits the lock now, so that a sweep does not hold them up either.
     */
    private static <T> T ifFree(BundlePaths paths, Function<BooleanSupplier, T> work) {
        return locked(paths, false, work);
    }

    private static <T> T locked(BundlePaths paths, boolean wait, Function<BooleanSupplier, T> work) {
        Path key = paths.bundleDir();
        IdLock held = ID_LOCKS.compute(key, (k, lock) -> {
            IdLock counted = lock == null ? new IdLock() : lock;
            counted.users++;
            return counted;
        });
        try {
            if (wait) {
                held.lock.lock();
            } else if (!held.lock.tryLock()) {
                return null;
            }
            try {
                return work.apply(held.lock::hasQueuedThreads);
            } finally {
                held.lock.unlock();
            }
        } finally {
            ID_LOCKS.computeIfPresent(key, (k, lock) -> --lock.users == 0 ? null : lock);
        }
    }

    /** The lock of one bundle and how many operations hold or wait for it; counted only inside the map's compute. */
    private static final class IdLock {
        final ReentrantLock lock = new ReentrantLock();
        int users;
    }

    /**
     * Refuses, before anything is renamed or removed, a bundle that is still in use, so a refused delete leaves
     * the container fully controllable: its bundle, work directory and records stay where they are.
     */
    private void requireNotInUse(BundlePaths paths) {
        requireNothingMounted(paths);
    }

    /** Refuses when anything is mounted at or under the bundle or work directory, or a hidden tree of the id. */
    private static void requireNothingMounted(BundlePaths paths) {
        List<BundleMounts.Mounted> mounted;
        try {
            mounted = BundleMounts.of(paths.bundleDir(), paths.workDir());
        } catch (IOException e) {
            throw StorageErrors.typed("delete bundle " + paths.name() + ": cannot read " + MountTable.MOUNTINFO, e);
        }
        if (!mounted.isEmpty()) {
            BundleMounts.Mounted first = mounted.getFirst();
            throw new FailedPreconditionException("bundle " + paths.name() + " is in use: " + first.point()
                    + " is mounted under " + (first.inBundleDir() ? "its bundle directory " : "its work directory ")
                    + first.tree() + "; nothing was deleted");
        }
    }

    /**
     * Refuses when anything is mounted at or under a hidden tree of the id. The live bundle's mounts do not count:
     * a sweep never walks its directories, and refusing for them kept what a cut delete left for as long as a new
     * bundle of the id ran.
     */
    private static void requireNoLeftoverMounted(BundlePaths paths) {
        List<BundleMounts.Mounted> mounted;
        try {
            mounted = BundleMounts.of(paths.bundleDir(), paths.workDir());
        } catch (IOException e) {
            throw StorageErrors.typed("remove what deletes of " + paths.name() + " left: cannot read "
                    + MountTable.MOUNTINFO, e);
        }
        for (BundleMounts.Mounted point : mounted) {
            if (isHiddenTreeOf(point.tree().getFileName().toString(), paths.id())) {
                throw new FailedPreconditionException("what a delete of " + paths.name() + " left is in use: "
                        + point.point() + " is mounted under " + point.tree() + "; nothing was removed");
            }
        }
    }

    private void removeTrees(BundlePaths paths) {
        List<IOException> failures = new ArrayList<>(2);
        List<Path> left = new ArrayList<>(2);
        // While the bundle directory cannot be hidden the bundle still exists, and its work directory holds how to
        // reach its shim: removing that anyway left a loadable bundle whose container nobody could reach.
        if (hide(paths.bundleDir(), "bundle directory", failures)) {
            // Both hidden before either is removed: a removal the runtime's stop cuts short then leaves no work
            // directory in sight, which would fail the next create of the id.
            hide(paths.workDir(), "work directory", failures);
            removeHidden(paths, failures, left, deletesStopped, () -> false);
        }
        if (!failures.isEmpty()) {
            StringBuilder message = new StringBuilder("delete bundle ").append(paths.name());
            for (IOException failure : failures) {
                message.append("; ").append(failure.getMessage());
            }
            // A mount met mid-walk decides the type: the caller must unmount before anything else helps.
            IOException primary = failures.stream()
                    .filter(failure -> failure.getCause() instanceof MountCrossingException)
                    .findFirst()
                    .map(failure -> (IOException) failure.getCause())
                    .orElse(failures.getFirst());
            ShimmerException error = StorageErrors.typed(message.toString(), primary);
            failures.stream().filter(failure -> failure != primary && failure.getCause() != primary)
                    .forEach(error::addSuppressed);
            if (!left.isEmpty()) {
                error.addSuppressed(cutShort(paths, left));
            }
            throw error;
        }
        if (!left.isEmpty()) {
            throw cutShort(paths, left);
        }
    }

    /**
     * What a delete the runtime's stop cut short reports. Not success: the files are still on disk, and a host
     * that retries an unavailable runtime's call gets them removed; one that does not has them removed by its
     * next list of the namespace.
     */
    private static UnavailableException cutShort(BundlePaths paths, List<Path> left) {
        return new UnavailableException("delete bundle " + paths.name() + ": the runtime stopped while the"
                + " bundle's files were being removed; the bundle is gone (load and list no longer find it), and"
                + " what is left (" + left.stream().map(Path::toString).collect(Collectors.joining(", "))
                + ") is removed by the next delete of " + paths.name() + " or the next list of namespace "
                + paths.namespace());
    }

    /**
     * Renames {@code dir} out of sight, to a name only {@link #isHiddenTreeOf} accepts.
     *
     * @return whether {@code dir} is out of sight (hidden or absent)
     */
    private static boolean hide(Path dir, String what, List<IOException> failures) {
        String id = dir.getFileName().toString();
        try {
            Files.move(dir, dir.resolveSibling(hiddenPrefix(id) + UUID.randomUUID()), StandardCopyOption.ATOMIC_MOVE);
        } catch (NoSuchFileException absent) {
            // Already gone, or never made: nothing to hide.
        } catch (IOException e) {
            failures.add(new IOException(what + " " + dir + ": " + describe(e), e));
            return false;
        }
        return true;
    }

    /**
     * Removes every hidden tree of the bundle's id, this delete's and what an earlier crashed, refused or cut
     * delete left, on the state-root side and then the work-root side; call with the id's lock held. Once
     * {@code stopped} says so (or {@code spent}, asked before each removal: a list's budget), the tree being removed
     * and those not begun are added to {@code left}.
     */
    private void removeHidden(BundlePaths paths, List<IOException> failures, List<Path> left,
            BooleanSupplier stopped, BooleanSupplier spent) {
        for (Path dir : List.of(paths.bundleDir(), paths.workDir())) {
            String what = dir.equals(paths.bundleDir()) ? "bundle directory" : "work directory";
            try (DirectoryStream<Path> hidden = Files.newDirectoryStream(dir.getParent(), entry ->
                    isHiddenTreeOf(entry.getFileName().toString(), paths.id()))) {
                for (Path entry : hidden) {
                    if (!left.isEmpty() || stopped.getAsBoolean()
                            || !DirectoryTrees.deleteRecursively(entry, walkObserver, stopped, spent)) {
                        left.add(entry);
                    }
                }
            } catch (NoSuchFileException absent) {
                // The namespace directory itself is absent.
            } catch (IOException | DirectoryIteratorException e) {
                IOException cause = e instanceof DirectoryIteratorException iteration ? iteration.getCause()
                        : (IOException) e;
                failures.add(new IOException(what + " " + dir + ": " + describe(cause), cause));
            }
        }
    }

    /**
     * Removes the hidden trees of every id in {@code namespace} (what deletes that a stop or a crash cut short
     * left), skipping an id that a create or delete works on now (that delete removes them itself) and one with
     * anything mounted at or under its hidden trees ({@link #requireNoLeftoverMounted}: {@code forceDelete}
     * detaches it; the live bundle's mounts, which the walk never reaches, do not count).
     * Best effort: a failure is logged, for the next list or delete to retry; it stops with the runtime as a
     * delete does, and once {@code cancelled} says its list was cancelled.
     */
    private void sweepHidden(String namespace, BooleanSupplier cancelled) {
        Set<String> ids = new TreeSet<>();
        for (Path dir : List.of(config.stateRoot().resolve(namespace), config.workRoot().resolve(namespace))) {
            try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
                for (Path entry : entries) {
                    String id = hiddenTreeId(entry.getFileName().toString());
                    if (id != null) {
                        ids.add(id);
                    }
                }
            } catch (NoSuchFileException absent) {
                // No bundle was ever made there.
            } catch (IOException | DirectoryIteratorException e) {
                log.warn("could not look for what deletes left in {}; the next list retries", dir, e);
            }
        }
        // One list's sweep, on one io thread: a plain counter of removals (going down a tree is not counted: a tree
        // deeper than the budget spent it all going down, and stayed for good, the ids after it with it).
        int[] looks = {0};
        BooleanSupplier budgetSpent = () -> ++looks[0] > sweepBudget;
        for (String id : ids) {
            if (deletesStopped.getAsBoolean() || cancelled.getAsBoolean() || looks[0] >= sweepBudget) {
                return;
            }
            try {
                BundlePaths paths = paths(namespace, id);
                ifFree(paths, awaited -> {
                    requireNoLeftoverMounted(paths);
                    List<IOException> failures = new ArrayList<>(0);
                    List<Path> left = new ArrayList<>(0);
                    // A create or delete of the id that comes meanwhile goes first: the rest waits for it (a delete
                    // removes it) or for the next list, as a tree of hundreds of thousands of files held it up.
                    removeHidden(paths, failures, left, () -> deletesStopped.getAsBoolean()
                            || cancelled.getAsBoolean() || awaited.getAsBoolean(), budgetSpent);
                    failures.forEach(failure -> log.warn("could not remove what a delete of {} left: {}; the next"
                            + " list or delete retries", paths.name(), failure.getMessage(), failure));
                    if (!left.isEmpty()) {
                        log.info("stopped removing {}: the runtime stops, a create or delete of {} came, or this"
                                + " list was cancelled or removed its share; the next list of {} or delete of {}"
                                + " removes the rest", left, paths.name(), namespace, paths.name());
                    }
                    return null;
                });
            } catch (FailedPreconditionException refused) {
                log.info("left what a delete of {}/{} left: {}", namespace, id, refused.getMessage());
            } catch (RuntimeException e) {
                log.warn("could not remove what a delete of {}/{} left; the next list or delete retries",
                        namespace, id, e);
            }
        }
    }

    private static String hiddenPrefix(String id) {
        return "." + id + DELETING_MARK;
    }

    /** The id whose delete hid a tree named {@code name}; null for any other name. */
    static String hiddenTreeId(String name) {
        int idEnd = name.length() - DELETING_MARK.length() - UUID_LENGTH;
        if (idEnd <= 1 || name.charAt(0) != '.') {
            return null;
        }
        String id = name.substring(1, idEnd);
        return Identifiers.isValid(id) && isHiddenTreeOf(name, id) ? id : null;
    }

    /**
     * Whether {@code name} is a tree a delete of {@code id} hid: the prefix and a UUID exactly, so the hidden
     * trees of id {@code a} never match those of id {@code a.deleting-x}.
     */
    static boolean isHiddenTreeOf(String name, String id) {
        String prefix = hiddenPrefix(id);
        if (!name.startsWith(prefix) || name.length() != prefix.length() + UUID_LENGTH) {
            return false;
        }
        try {
            UUID.fromString(name.substring(prefix.length()));
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    private static String describe(IOException e) {
        String reason = e.getMessage();
        return e.getClass().getSimpleName() + (reason == null ? "" : " " + reason);
    }

    /** A real directory (no symbolic link) holding a regular {@code config.json}. */
    private static boolean isComplete(Path bundleDir) {
        return Files.isDirectory(bundleDir, LinkOption.NOFOLLOW_LINKS)
                && Files.isRegularFile(bundleDir.resolve(CONFIG_FILE), LinkOption.NOFOLLOW_LINKS);
    }

    private static void closeQuietly(DirectoryStream<Path> stream) {
        try {
            stream.close();
        } catch (IOException ignored) {
            // Nothing was written through it.
        }
    }

    private Bundle bundle(BundlePaths paths) {
        return new LinuxBundle(paths.namespace(), paths.id(), paths.bundleDir(), paths.workDir(), this);
    }

    /** The validated names of a bundle and the two directories they map to. */
    private record BundlePaths(String namespace, String id, Path bundleDir, Path workDir) {
        String name() {
            return namespace + "/" + id;
        }
    }
}
