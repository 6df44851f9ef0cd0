package org.shimmer.runtime;

import java.nio.file.Path;
import java.util.List;
import org.reactivestreams.Publisher;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.Stdio;
import org.shimmer.runtime.shim.TerminalSize;
import org.shimmer.runtime.spec.Spec;

/**
 * What {@link RuntimePlugin#run} runs: a container {@code namespace/id} from {@code spec} on the host directory
 * {@code rootfs}, through a shim, with its stdin and how much unread output it holds. Immutable; every
 * {@code with*} method returns a modified copy. Every argument is checked when given: a bad one throws the
 * {@link ShimmerException} subtype that names it ({@link InvalidIdentifierException} for the namespace and id,
 * {@link InvalidSpecException} for the rest).
 */
public final class RunRequest {

    /** The output each stream holds for nobody when none is given: 1 MiB. */
    public static final int DEFAULT_OUTPUT_BUFFER = 1 << 20;

    private final String namespace;
    private final String id;
    private final Spec spec;
    private final Path rootfs;
    private final Image image;
    private final List<String> entrypoint;
    private final ShimOpt shim;
    private final RuncOptions runcOptions;
    private final Publisher<byte[]> stdin;
    private final int outputBuffer;
    private final TerminalSize terminal;

    private RunRequest(String namespace, String id, Spec spec, Path rootfs, Image image, List<String> entrypoint,
            ShimOpt shim, RuncOptions runcOptions, Publisher<byte[]> stdin, int outputBuffer, TerminalSize terminal) {
        this.namespace = namespace;
        this.id = id;
        this.spec = spec;
        this.rootfs = rootfs;
        this.image = image;
        this.entrypoint = entrypoint;
        this.shim = shim;
        this.runcOptions = runcOptions;
        this.stdin = stdin;
        this.outputBuffer = outputBuffer;
        this.terminal = terminal;
    }

    /**
     * A request with the local shim, default runc options, no stdin and {@link #DEFAULT_OUTPUT_BUFFER}.
     *
     * @param namespace a valid {@linkplain Identifiers identifier}
     * @param id a valid {@linkplain Identifiers identifier}, the bundle's and the container's
     * @param spec the container's spec; its root is the bundle's {@code rootfs} directory
     * @param rootfs a host directory, the lower layer of the container's overlay root: the container writes into
     *     an upper directory in its work directory, deleted with it, and {@code rootfs} is never changed (its real
     *     path, symbolic links resolved when the run starts, is used)
     */
    public static RunRequest of(String namespace, String id, Spec spec, Path rootfs) {
        Identifiers.requireValid("namespace", namespace);
        Identifiers.requireValid("id", id);
        return new RunRequest(namespace, id, require(spec, "spec"), require(rootfs, "rootfs").toAbsolutePath(),
                null, null, ShimOpt.local(), RuncOptions.defaults(), null, DEFAULT_OUTPUT_BUFFER, null);
    }

    /**
     * A request like {@link #of(String, String, Spec, Path)} whose root is {@code image}'s layers under a
     * per-container upper directory, and whose process starts from the image's configuration as containerd's
     * {@code WithImageConfig} and docker do:
     * <ul>
     *   <li>args: the image's entrypoint (or {@link #withEntrypoint}'s), then {@code spec}'s args, or the image's
     *       cmd when {@code spec} has none;</li>
     *   <li>env: the image's entries, each replaced by {@code spec}'s entry of the same name, then {@code spec}'s
     *       others (a {@code PATH} equal to {@link Spec#DEFAULT_PATH}, which every spec
     *       starts with, does not replace the image's);</li>
     *   <li>cwd: {@code spec}'s unless it is {@code /}, then the image's working directory (or {@code /});</li>
     *   <li>user: {@code spec}'s unless it is root with no additional groups, then the image's user, names looked
     *       up in the image's {@code /etc/passwd} and {@code /etc/group}.</li>
     * </ul>
     * The image is found by its digest when the run starts (a {@link NotFoundException} when it was removed), and
     * cannot be removed while the container exists.
     */
    public static RunRequest of(String namespace, String id, Spec spec, Image image) {
        Identifiers.requireValid("namespace", namespace);
        Identifiers.requireValid("id", id);
        return new RunRequest(namespace, id, require(spec, "spec"), null, require(image, "image"), null,
                ShimOpt.local(), RuncOptions.defaults(), null, DEFAULT_OUTPUT_BUFFER, null);
    }

    /**
     * For a request from an image, the entrypoint to use instead of the image's (docker's {@code --entrypoint});
     * no words clear it, and {@code spec}'s args (or the image's cmd) are the whole command. Refused for a
     * request from a directory.
     */
    public RunRequest withEntrypoint(String... entrypoint) {
        if (image == null) {
            throw new InvalidSpecException("run request " + name() + ": an entrypoint needs an image; a rootfs"
                    + " directory has none to replace");
        }
        require(entrypoint, "entrypoint");
        // List.of threw a bare NullPointerException for a null word, naming nothing.
        for (int i = 0; i < entrypoint.length; i++) {
            require(entrypoint[i], "entrypoint[" + i + "]");
        }
        List<String> words = List.of(entrypoint);
        return new RunRequest(namespace, id, spec, rootfs, image, words, shim, runcOptions, stdin, outputBuffer,
                terminal);
    }

    /** The shim to run the container through ({@link ShimOpt#local()} by default; {@link ShimOpt.Connect} is refused). */
    public RunRequest withShim(ShimOpt shim) {
        if (require(shim, "shim") instanceof ShimOpt.Connect) {
            throw new InvalidSpecException("run request " + name() + ": shim ShimOpt.connect() reattaches to a "
                    + "running container; run starts a new one (ShimOpt.local() or ShimOpt.remote(...))");
        }
        return new RunRequest(namespace, id, spec, rootfs, image, entrypoint, shim, runcOptions, stdin,
                outputBuffer, terminal);
    }

    /** How runc is run ({@link RuncOptions#defaults()} by default). */
    public RunRequest withRuncOptions(RuncOptions runcOptions) {
        return new RunRequest(namespace, id, spec, rootfs, image, entrypoint, shim,
                require(runcOptions, "runcOptions"), stdin, outputBuffer, terminal);
    }

    /** The container's stdin; when the publisher ends, stdin is closed. None ({@code /dev/null}) by default. */
    public RunRequest withStdin(Publisher<byte[]> stdin) {
        return new RunRequest(namespace, id, spec, rootfs, image, entrypoint, shim, runcOptions,
                require(stdin, "stdin"), outputBuffer, terminal);
    }

    /**
     * The most bytes of stdout, and as many of stderr, held while nobody reads them; beyond that the oldest are
     * dropped (see {@link Container#stdout()}). 0 keeps nothing for nobody; a subscriber waiting for output still
     * gets what comes.
     */
    public RunRequest withOutputBuffer(int bytes) {
        if (bytes < 0) {
            throw new InvalidSpecException("run request " + name() + ": outputBuffer " + bytes
                    + " is negative");
        }
        return new RunRequest(namespace, id, spec, rootfs, image, entrypoint, shim, runcOptions, stdin, bytes,
                terminal);
    }

    /**
     * Gives the container's init process a pseudo-terminal of {@code size} ({@link Stdio#terminal}): the spec's
     * {@code process.terminal} is set, its output is one stream ({@link Container#stdout()}), its stdin (from
     * {@link #withStdin}) is typed into it, and {@link Container#resize} changes its size. None by default.
     */
    public RunRequest withTerminal(TerminalSize size) {
        return new RunRequest(namespace, id, spec, rootfs, image, entrypoint, shim, runcOptions, stdin, outputBuffer,
                require(size, "terminal"));
    }

    /** The init process's terminal size, or {@code null} when it gets no terminal. */
    public TerminalSize terminal() {
        return terminal;
    }

    public String namespace() {
        return namespace;
    }

    public String id() {
        return id;
    }

    public Spec spec() {
        return spec;
    }

    /** The root filesystem directory, absolute, or {@code null} for a request from an image. */
    public Path rootfs() {
        return rootfs;
    }

    /** The image, or {@code null} for a request from a directory. */
    public Image image() {
        return image;
    }

    /** The entrypoint replacing the image's, or {@code null} to keep the image's. */
    public List<String> entrypoint() {
        return entrypoint;
    }

    public ShimOpt shim() {
        return shim;
    }

    public RuncOptions runcOptions() {
        return runcOptions;
    }

    /** The stdin publisher, or {@code null} for none. */
    public Publisher<byte[]> stdin() {
        return stdin;
    }

    public int outputBuffer() {
        return outputBuffer;
    }

    private String name() {
        return namespace + "/" + id;
    }

    private static <T> T require(T value, String argument) {
        if (value == null) {
            throw new InvalidSpecException("run request: " + argument + " is null");
        }
        return value;
    }

    @Override
    public String toString() {
        return "RunRequest[" + name() + (image != null ? ", image=" + image.name() : ", rootfs=" + rootfs)
                + ", shim=" + shim.getClass().getSimpleName()
                + ", outputBuffer=" + outputBuffer + (terminal != null ? ", terminal=" + terminal.width() + "x"
                + terminal.height() : "") + "]";
    }
}
