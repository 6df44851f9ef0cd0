package org.shimmer.runtime.linux.bundle;

import java.io.IOException;
import java.nio.file.DirectoryIteratorException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.linux.bundle.DirectoryTrees.MountCrossingException;
import org.shimmer.runtime.linux.bundle.DirectoryTrees.WalkObserver;
import org.shimmer.runtime.linux.sys.MountTable;
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
 *       and the next delete of that id finishes the hidden trees while create ignores them;</li>
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

    private static final Set<PosixFilePermission> DIR_MODE = PosixFilePermissions.fromString("rwx--x--x");
    private static final Set<PosixFilePermission> CONFIG_MODE = PosixFilePermissions.fromString("rw-------");
    private static final FileAttribute<Set<PosixFilePermission>> DIR_ATTRIBUTE =
            PosixFilePermissions.asFileAttribute(DIR_MODE);

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

    /**
     * @param config where bundles live
     * @param io the bounded scheduler that runs every file operation
     * @param shims what {@link Bundle#newShimClient} of this store's bundles calls
     */
    public BundleStore(RuntimeConfig config, Scheduler io, ShimFactory shims) {
        this(config, io, shims, DeleteGuard.NONE, CreateObserver.NONE, WalkObserver.NONE);
    }

    /**
     * @param guard asked before a delete touches anything; refuses a bundle whose shim or container still lives
     */
    public BundleStore(RuntimeConfig config, Scheduler io, ShimFactory shims, DeleteGuard guard) {
        this(config, io, shims, guard, CreateObserver.NONE, WalkObserver.NONE);
    }

    BundleStore(RuntimeConfig config, Scheduler io, ShimFactory shims, CreateObserver observer) {
        this(config, io, shims, DeleteGuard.NONE, observer, WalkObserver.NONE);
    }

    BundleStore(RuntimeConfig config, Scheduler io, ShimFactory shims, CreateObserver observer,
            WalkObserver walkObserver) {
        this(config, io, shims, DeleteGuard.NONE, observer, walkObserver);
    }

    private BundleStore(RuntimeConfig config, Scheduler io, ShimFactory shims, DeleteGuard guard,
            CreateObserver observer, WalkObserver walkObserver) {
        this.config = Objects.requireNonNull(config, "config");
        this.io = Objects.requireNonNull(io, "io");
        this.shims = Objects.requireNonNull(shims, "shims");
        this.guard = Objects.requireNonNull(guard, "guard");
        this.observer = Objects.requireNonNull(observer, "observer");
        this.walkObserver = Objects.requireNonNull(walkObserver, "walkObserver");
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

    /** See {@link org.shimmer.runtime.RuntimePlugin#list}. */
    public Flux<Bundle> list(String namespace) {
        return Flux.defer(() -> {
            Path namespaceDir = config.stateRoot().resolve(Identifiers.requireValid("namespace", namespace));
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
                            namespace, id, namespaceDir.resolve(id), namespaceWorkDir.resolve(id))));
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
     *     under either directory; otherwise one typed error ({@link StorageErrors}) naming every failure
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
            throw new FailedPreconditionException("bundle " + paths.name() + " cannot exist: namespace "
                    + namespace + " would hold the state root " + config.stateRoot() + " or the work root "
                    + config.workRoot());
        }
        return paths;
    }

    /** Makes the bundle; null, with everything made removed again, when {@code settled} says it was cancelled. */
    private Bundle createOnDisk(BundlePaths paths, byte[] spec, AtomicBoolean settled) {
        Deque<Path> created = new ArrayDeque<>();
        // The path being worked on, for the error: the JDK names no path when a write runs out of space.
        Path current = paths.bundleDir().getParent();
        try {
            ensureDirectories(current);
            current = paths.workDir().getParent();
            ensureDirectories(current);

            current = paths.bundleDir();
            createExclusiveDirectory(paths.bundleDir(), paths, "bundle");
            created.push(paths.bundleDir());
            observer.created(CreateStep.BUNDLE_DIR, paths.bundleDir());

            // Exclusive as well: containerd#2605 reused an existing work dir here and its rollback then deleted
            // the work dir of a running container.
            current = paths.workDir();
            createExclusiveDirectory(paths.workDir(), paths, "work");
            created.push(paths.workDir());
            observer.created(CreateStep.WORK_DIR, paths.workDir());

            Path rootfs = paths.bundleDir().resolve(ROOTFS_DIR);
            current = rootfs;
            createDirectory(rootfs);
            created.push(rootfs);
            observer.created(CreateStep.ROOTFS_DIR, rootfs);

            Path configFile = paths.bundleDir().resolve(CONFIG_FILE);
            Path partial = paths.bundleDir().resolve("." + CONFIG_FILE + ".partial");
            created.push(partial);
            current = partial;
            Files.write(partial, spec, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            Files.setPosixFilePermissions(partial, CONFIG_MODE);
            Files.move(partial, configFile, StandardCopyOption.ATOMIC_MOVE);
            created.pop();
            created.push(configFile);
            observer.created(CreateStep.CONFIG_FILE, configFile);
            if (!settled.compareAndSet(false, true)) {
                rollback(created, null);
                return null;
            }
            return bundle(paths);
        } catch (IOException | RuntimeException e) {
            RuntimeException failure = e instanceof RuntimeException runtime
                    ? runtime
                    : StorageErrors.typed("create bundle " + paths.name() + " at " + current, (IOException) e);
            rollback(created, failure);
            throw failure;
        }
    }

    /**
     * Removes exactly what a failed or cancelled create made, newest first; a path that will not go is recorded on
     * {@code failure} (none for a cancel, which has nobody to tell), not fatal.
     */
    private static void rollback(Deque<Path> created, RuntimeException failure) {
        while (!created.isEmpty()) {
            Path path = created.pop();
            try {
                Files.deleteIfExists(path);
            } catch (IOException e) {
                if (failure != null) {
                    failure.addSuppressed(new IOException("rollback could not remove " + path, e));
                }
            }
        }
    }

    private void createExclusiveDirectory(Path dir, BundlePaths paths, String what) throws IOException {
        try {
            createDirectory(dir);
        } catch (FileAlreadyExistsException e) {
            throw new AlreadyExistsException(
                    "bundle " + paths.name() + " already exists: " + what + " directory " + dir + " is present", e);
        }
    }

    private static void createDirectory(Path dir) throws IOException {
        Files.createDirectory(dir, DIR_ATTRIBUTE);
        // The attribute is filtered through the umask; set the mode the layout promises.
        Files.setPosixFilePermissions(dir, DIR_MODE);
    }

    private static void ensureDirectories(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            Files.createDirectories(dir, DIR_ATTRIBUTE);
        }
    }

    private void deleteOnDisk(BundlePaths paths) {
        exclusively(paths, () -> {
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
        Path key = paths.bundleDir();
        IdLock held = ID_LOCKS.compute(key, (k, lock) -> {
            IdLock counted = lock == null ? new IdLock() : lock;
            counted.users++;
            return counted;
        });
        held.lock.lock();
        try {
            return work.get();
        } finally {
            held.lock.unlock();
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

    private void removeTrees(BundlePaths paths) {
        List<IOException> failures = new ArrayList<>(2);
        // While the bundle directory cannot be hidden the bundle still exists, and its work directory holds how to
        // reach its shim: removing that anyway left a loadable bundle whose container nobody could reach.
        if (deleteTree(paths.bundleDir(), "bundle directory", failures)) {
            deleteTree(paths.workDir(), "work directory", failures);
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
            throw error;
        }
    }

    /**
     * Renames {@code dir} out of sight, then removes it, and also removes what an earlier crashed or refused
     * delete of the same id left under its hidden names.
     *
     * @return whether {@code dir} is out of sight (hidden or absent), even if removing it failed
     */
    private boolean deleteTree(Path dir, String what, List<IOException> failures) {
        Path parent = dir.getParent();
        String id = dir.getFileName().toString();
        try {
            Files.move(dir, parent.resolve(hiddenPrefix(id) + UUID.randomUUID()), StandardCopyOption.ATOMIC_MOVE);
        } catch (NoSuchFileException absent) {
            // Already gone, or never made: nothing to hide.
        } catch (IOException e) {
            failures.add(new IOException(what + " " + dir + ": " + describe(e), e));
            return false;
        }
        try (DirectoryStream<Path> hidden = Files.newDirectoryStream(parent, entry ->
                isHiddenTreeOf(entry.getFileName().toString(), id))) {
            for (Path entry : hidden) {
                DirectoryTrees.deleteRecursively(entry, walkObserver);
            }
        } catch (NoSuchFileException absent) {
            // The namespace directory itself is absent.
        } catch (IOException | DirectoryIteratorException e) {
            IOException cause = e instanceof DirectoryIteratorException iteration ? iteration.getCause()
                    : (IOException) e;
            failures.add(new IOException(what + " " + dir + ": " + describe(cause), cause));
        }
        return true;
    }

    private static String hiddenPrefix(String id) {
        return "." + id + DELETING_MARK;
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
