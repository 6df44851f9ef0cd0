package org.shimmer.runtime.linux.shim;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.Supplier;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.ResourceExhaustedException;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.shim.ShimException;
import reactor.core.Exceptions;

/**
 * The one policy both shims use to turn a failure into the error a caller gets: always a {@link ShimmerException}
 * subtype, its message "action task ns/id: why", the original failure kept as its cause.
 *
 * <p>Invariant: no checked or unchecked IO exception reaches a caller untyped (issue 9: a full disk arrived as
 * {@code UncheckedIOException}, and a checked one as Reactor's internal {@code ReactiveException} out of
 * {@code block()}). What runc, the shim or the kernel said is classified by its errno or its text, as containerd's
 * errdefs does with runc's messages: out of space → {@link ResourceExhaustedException}, wrong state →
 * {@link FailedPreconditionException}; anything else is a {@link ShimException}. {@link #code} is that table, the
 * one place the words map to an {@link ErrorCode}, so both shims give the same code for the same situation.
 */
public final class TaskErrors {

    // errno values of x86-64 and arm64 Linux.
    private static final int EEXIST = 17;
    private static final int ENFILE = 23;
    private static final int EMFILE = 24;
    private static final int ENOSPC = 28;
    private static final int EDQUOT = 122;

    // What Go's fmt prints for an error wrapped with %w that was nil: runc's create with a full state root.
    private static final String LOST_REASON = "%!w(<nil>)";

    // The words runc 1.1.5, containerd-shim-runc-v2 1.6 and the kernel use, as printed (lower-cased), e.g.
    // runc's "cannot start a container that has stopped", the shim's "cannot exec in a stopped state".
    private static final List<String> EXHAUSTED = List.of("no space left on device", "disk quota exceeded",
            "too many open files");
    private static final List<String> PRECONDITION = List.of("not running", "already running", "already started",
            "already paused", "not paused", "not stopped", "cannot delete a running", "cannot delete running",
            "cannot start a running", "cannot start a stopped", "stopped container", "running container",
            "paused container", "stopped process", "running process", "paused process", "that has stopped",
            "stopped state", "paused state", "container is not", "failed precondition",
            // The shim's pause or resume of an init never started: "cannot pause task in created state".
            "in created state",
            // runc's start of a created init that a kill ended meanwhile (a start racing a kill).
            "process is already dead");
    // What a signal to a process that already ended meets (containerd's shim calls it "not found" too).
    private static final List<String> FINISHED = List.of("not running", "no such process", "already finished");
    // Only what names a missing container or process (runc's ErrNotExist, the shim's "process does not exist
    // e1: not found"): a create that failed on its spec says "does not exist" of other things (runc's
    // 'namespace {"time" ""} does not exist'), and the caller's container is not missing then.
    private static final List<String> NOT_FOUND = List.of("container does not exist", "process does not exist");
    private static final List<String> ALREADY_EXISTS = List.of("already exists");
    private static final List<String> INVALID_ARGUMENT = List.of("invalid container id", "id cannot be empty");
    /** How runc 1.1 prefixes a failure of its init inside the container, after the spec's limits applied. */
    private static final String IN_CONTAINER = "unable to start container process";

    private TaskErrors() {}

    /**
     * The typed error for {@code error}, which happened while doing {@code action} (e.g. "start exec e1 in") to
     * {@code task} ("task ns/id"). A typed error already naming the action is returned as it is.
     */
    public static ShimmerException map(String action, String task, Throwable error) {
        String prefix = action + " " + task;
        Throwable cause = unwrap(error);
        if (cause instanceof ShimmerException typed && !(typed instanceof ShimException)) {
            return named(typed, prefix);
        }
        String why = cause.getMessage() != null ? cause.getMessage() : cause.getClass().getSimpleName();
        boolean named = why.startsWith(prefix);
        ShimmerException typed = classify(named ? why : prefix + ": " + why, why, cause);
        // Already a shim error naming the action, and nothing more precise to say: keep it, unwrapped.
        return typed instanceof ShimException && named && cause instanceof ShimException shim ? shim : typed;
    }

    /**
     * The typed error for a failure described by {@code why} (runc's or the shim's own text), reported as
     * {@code message}, keeping {@code cause}.
     */
    public static ShimmerException classify(String message, String why, Throwable cause) {
        return typed(code(why, cause), message, cause);
    }

    /**
     * The code of a failure runc, the shim or the kernel described as {@code why}, its errno read from
     * {@code cause}'s chain; {@link ErrorCode#INTERNAL} for words that name no known situation.
     */
    public static ErrorCode code(String why, Throwable cause) {
        String text = why.toLowerCase(Locale.ROOT);
        // A call made after the plugin stopped, refused by its closed scheduler (a reload, a host shutdown): the
        // runtime is gone, not broken, and the container lives on for the next one to reattach.
        if (rejected(cause)) {
            return ErrorCode.UNAVAILABLE;
        }
        // runc's init, already inside the container and under the spec's RLIMIT_NOFILE, ran out of descriptors: a
        // limit below what runc needs to start a process (about ten), the spec's fault and no shortage of the
        // host's (that is "in system", ENFILE). As RESOURCE_EXHAUSTED, a host that retried on it retried for good.
        if (text.contains(IN_CONTAINER) && text.contains("too many open files") && !text.contains("in system")) {
            return ErrorCode.INVALID_ARGUMENT;
        }
        if (hasErrno(cause, ENOSPC, EDQUOT, ENFILE, EMFILE) || EXHAUSTED.stream().anyMatch(text::contains)
                || full(cause)) {
            return ErrorCode.RESOURCE_EXHAUSTED;
        }
        if (PRECONDITION.stream().anyMatch(text::contains)) {
            return ErrorCode.FAILED_PRECONDITION;
        }
        if (NOT_FOUND.stream().anyMatch(text::contains) || text.endsWith("not found")) {
            return ErrorCode.NOT_FOUND;
        }
        if (ALREADY_EXISTS.stream().anyMatch(text::contains) || hasErrno(cause, EEXIST)) {
            return ErrorCode.ALREADY_EXISTS;
        }
        if (INVALID_ARGUMENT.stream().anyMatch(text::contains)) {
            return ErrorCode.INVALID_ARGUMENT;
        }
        return ErrorCode.INTERNAL;
    }

    /** The error of {@code code}: the API's own type where it has one, else a {@link ShimException} carrying it. */
    public static ShimmerException typed(ErrorCode code, String message, Throwable cause) {
        return switch (code) {
            case NOT_FOUND -> new NotFoundException(message, cause);
            case ALREADY_EXISTS -> new AlreadyExistsException(message, cause);
            case FAILED_PRECONDITION -> new FailedPreconditionException(message, cause);
            case RESOURCE_EXHAUSTED -> new ResourceExhaustedException(message, cause);
            case UNAVAILABLE -> new UnavailableException(message, cause);
            default -> new ShimException(code, message, cause);
        };
    }

    /**
     * A kill's failure as containerd's shim reports it, so both shims agree: a process that already ended is not
     * found ("process already finished"), not a wrong state.
     */
    public static Throwable ofKill(Throwable error) {
        String why = String.valueOf(unwrap(error).getMessage()).toLowerCase(Locale.ROOT);
        return FINISHED.stream().anyMatch(why::contains)
                ? new NotFoundException("process already finished: not found (" + error.getMessage() + ")", error)
                : error;
    }

    /**
     * The first of {@code dirs} (or its nearest existing parent) whose file system has no block or no inode left.
     * For a failure that does not say why, when a full disk may have taken the explanation with it: runc, for one,
     * cannot log into a full bundle directory (issue 9: "exit status 1", "runc did not terminate successfully").
     */
    public static Optional<Path> fullFileSystem(Collection<Path> dirs) {
        for (Path dir : dirs) {
            Path existing = dir;
            while (existing != null && !Files.isDirectory(existing)) {
                existing = existing.getParent();
            }
            if (existing != null && isFull(existing)) {
                return Optional.of(existing);
            }
        }
        return Optional.empty();
    }

    /**
     * {@code why}, naming the full file system {@code full} finds when {@code why} names no known situation
     * ({@link ErrorCode#INTERNAL}) or is out of space without naming a directory on that file system; runc's
     * {@code %!w(<nil>)} (its reason lost: "unable to store init state: %!w(<nil>)") is then said in words. Else
     * {@code why} as it is. {@code full} is asked only in those cases.
     */
    public static String withFullFileSystem(String why, Supplier<Optional<Path>> full) {
        ErrorCode code = code(why, null);
        String text = why.toLowerCase(Locale.ROOT);
        // Out of descriptors is no full disk, whatever the disks hold.
        boolean noSpace = code == ErrorCode.RESOURCE_EXHAUSTED
                && (text.contains("no space left on device") || text.contains("disk quota exceeded"));
        if (code != ErrorCode.INTERNAL && !noSpace) {
            return why;
        }
        return full.get()
                .filter(dir -> code == ErrorCode.INTERNAL || !why.contains(dir.toString()))
                .map(dir -> onFullFileSystem(why, dir))
                .orElse(why);
    }

    /** {@code why} of a failure on the full file system of {@code dir}: says so, and runc's lost reason in words. */
    public static String onFullFileSystem(String why, Path dir) {
        return why.replace(LOST_REASON, "(reason lost)") + "; no space left on device in " + dir;
    }

    private static boolean isFull(Path dir) {
        try {
            // No block or no inode left. Asked of statfs, not by making a file: this runs for every failure that
            // names no known reason, and a probe file appeared in bundles being deleted and in runc's root. A file
            // system that counts no blocks (a tmpfs with size=0, ramfs: 0 of 0 free) is not full: read as free space,
            // its 0 made every such failure "no space left on device" with runc's root on one.
            return LinuxCalls.freeBlocks(dir) == 0 || LinuxCalls.freeInodes(dir) == 0;
        } catch (IOException e) {
            return false;
        }
    }

    /** {@code typed}, or the same kind of error naming the action too when a lower layer (runc) raised it. */
    private static ShimmerException named(ShimmerException typed, String prefix) {
        String message = typed.getMessage();
        if (message != null && message.startsWith(prefix)) {
            return typed;
        }
        String named = prefix + ": " + message;
        return switch (typed) {
            case ResourceExhaustedException e -> new ResourceExhaustedException(named, e);
            case FailedPreconditionException e -> new FailedPreconditionException(named, e);
            case NotFoundException e -> new NotFoundException(named, e);
            case AlreadyExistsException e -> new AlreadyExistsException(named, e);
            case UnavailableException e -> new UnavailableException(named, e);
            // Identifiers and specs are named by the value itself.
            default -> typed;
        };
    }

    /** Whether {@code cause}'s chain holds a scheduler's refusal to take the work. */
    public static boolean rejected(Throwable cause) {
        for (Throwable t = cause; t != null; t = t.getCause()) {
            if (t instanceof RejectedExecutionException) {
                // A running scheduler's full queue refuses too: that is too much work at once, not a stopped runtime.
                return !full(t);
            }
        }
        return false;
    }

    /** Whether {@code rejection} is Reactor's bounded scheduler refusing a task over its queue's capacity. */
    private static boolean full(Throwable rejection) {
        for (Throwable t = rejection; t != null; t = t.getCause()) {
            if (t.getMessage() != null && t.getMessage().startsWith("Task capacity of bounded elastic scheduler")) {
                return true;
            }
        }
        return false;
    }

    /** Whether a system call in {@code cause}'s chain failed with one of {@code errnos} (a FIFO name taken: EEXIST). */
    private static boolean hasErrno(Throwable cause, int... errnos) {
        for (Throwable t = cause; t != null; t = t.getCause()) {
            if (t instanceof LinuxCalls.ErrnoException failed) {
                for (int errno : errnos) {
                    if (failed.errno() == errno) {
                        return true;
                    }
                }
            }
        }
        return false;
    }

    /** The failure itself, without the wrappers that only carried it across an API that allows no checked one. */
    private static Throwable unwrap(Throwable error) {
        Throwable cause = Exceptions.unwrap(error);
        while (cause instanceof UncheckedIOException unchecked && unchecked.getCause() != null) {
            cause = unchecked.getCause();
        }
        return cause;
    }
}
