package org.shimmer.runtime.linux.shim.remote;

import java.nio.file.Path;
import java.util.List;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.ResourceExhaustedException;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.linux.shim.TaskErrors;
import org.shimmer.runtime.linux.ttrpc.TtrpcClosedException;
import org.shimmer.runtime.linux.ttrpc.TtrpcStatusException;
import org.shimmer.runtime.shim.ShimException;

/**
 * Turns ttRPC failures into the API's typed errors, naming the action and the task. A status code the shim chose
 * (containerd's errdefs codes) decides the type; an unknown one is classified by the shim's message, which for a
 * failed runc command carries runc's own error ("OCI runtime create failed: …: no space left on device: unknown").
 */
final class ShimErrors {

    private ShimErrors() {}

    /**
     * {@link #map(String, String, Throwable)}, and when that finds no reason more precise than the shim's own text,
     * whether one of {@code written} (where the shim and runc write) is on a full file system: the shim's
     * "runc did not terminate successfully" is all that is left of runc's reason when runc could not log it.
     */
    static Throwable map(String action, String task, Throwable error, Path... written) {
        Throwable mapped = map(action, task, error);
        if (mapped.getClass() != ShimException.class) {
            return mapped;
        }
        return TaskErrors.fullFileSystem(List.of(written))
                .<Throwable>map(full -> new ResourceExhaustedException(mapped.getMessage()
                        + "; no space left on device in " + full, mapped))
                .orElse(mapped);
    }

    static Throwable map(String action, String task, Throwable error) {
        if (error instanceof TtrpcStatusException status) {
            String message = action + " " + task + ": " + status.statusMessage();
            return switch (status.code()) {
                case NOT_FOUND -> new NotFoundException(message, status);
                case ALREADY_EXISTS -> new AlreadyExistsException(message, status);
                case FAILED_PRECONDITION -> new FailedPreconditionException(message, status);
                case RESOURCE_EXHAUSTED -> new ResourceExhaustedException(message, status);
                case UNAVAILABLE -> new UnavailableException(message, status);
                default -> TaskErrors.classify(message + " (" + status.code() + ")", status.statusMessage(), status);
            };
        }
        if (error instanceof TtrpcClosedException closed) {
            return new ShimException(action + " " + task + ": the shim is gone (" + closed.getMessage() + ")",
                    closed);
        }
        // Our own shim errors already say what happened to which shim.
        if (error instanceof ShimException shim) {
            return shim;
        }
        return TaskErrors.map(action, task, error);
    }
}
