package org.shimmer.runtime.linux.shim.remote;

import java.nio.file.Path;
import java.util.List;
import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.ResourceExhaustedException;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.linux.shim.ProcessState;
import org.shimmer.runtime.linux.shim.TaskErrors;
import org.shimmer.runtime.linux.shim.TaskProcess;
import org.shimmer.runtime.linux.ttrpc.StatusCode;
import org.shimmer.runtime.linux.ttrpc.TtrpcClosedException;
import org.shimmer.runtime.linux.ttrpc.TtrpcStatusException;
import org.shimmer.runtime.linux.ttrpc.TtrpcTimeoutException;
import org.shimmer.runtime.shim.ShimException;

/**
 * Turns ttRPC failures into the API's typed errors, naming the action and the task. A status code the shim chose
 * (containerd's errdefs codes) decides the type; an unknown one is classified by the shim's message, which for a
 * failed runc command carries runc's own error ("OCI runtime create failed: …: no space left on device: unknown").
 * {@link #code(TtrpcStatusException)} is the one table from status codes to {@link ErrorCode}s; a call that had no
 * answer in time is {@link ErrorCode#DEADLINE_EXCEEDED}, a connection that closed {@link ErrorCode#UNAVAILABLE}.
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
        if (!(mapped instanceof ShimException shim) || shim.code() != ErrorCode.INTERNAL) {
            return mapped;
        }
        return TaskErrors.fullFileSystem(List.of(written))
                .<Throwable>map(full -> new ResourceExhaustedException(TaskErrors.onFullFileSystem(mapped.getMessage(),
                        full), mapped))
                .orElse(mapped);
    }

    /**
     * Whether a failed Create may have left a runc container of ours: the shim answered with a failure (or never
     * answered), and not because the task already existed. The shim was told there was no task before.
     */
    static boolean createMayHaveLeftContainer(Throwable error) {
        if (error instanceof TtrpcStatusException status) {
            return status.code() != StatusCode.ALREADY_EXISTS && !saysAlreadyExists(status);
        }
        return error instanceof TtrpcTimeoutException;
    }

    /** The typed error of a failed create; {@code written} as for {@link #map(String, String, Throwable, Path...)}. */
    static Throwable createFailure(String task, Throwable error, ShimSession session, Path... written) {
        if (error instanceof ShimmerException typed) {
            return typed;
        }
        if (error instanceof TtrpcStatusException status && saysAlreadyExists(status)) {
            return new AlreadyExistsException("create " + task + ": " + status.statusMessage(), status);
        }
        if (error instanceof TtrpcClosedException) {
            return session.mapError("create", error);
        }
        // runc's reason may be lost when it could not even log it: name a full file system the shim writes to.
        return map("create", task, error, written);
    }

    /**
     * The runc shim's refusals of a pause, resume or exec because of the task's state (containerd's process state
     * machine, "cannot pause a paused container" with an UNKNOWN status) in the local shim's words, which name the
     * state; null for any other answer. The words of a refused delete are the client's to read: an exec's state
     * there follows its container's.
     */
    private static Throwable stateRefused(String subject, TtrpcStatusException status) {
        String said = status.statusMessage();
        if (said.contains("cannot pause a paused container")) {
            return TaskProcess.stateRefused(subject, "pause", ProcessState.PAUSED, status);
        }
        if (said.contains("cannot resume a running process")) {
            return TaskProcess.stateRefused(subject, "resume", ProcessState.RUNNING, status);
        }
        if (said.contains("cannot exec in a paused state")) {
            return TaskProcess.stateRefused(subject, "exec in", ProcessState.PAUSED, status);
        }
        return null;
    }

    private static boolean saysAlreadyExists(TtrpcStatusException status) {
        return status.statusMessage().contains("already exists");
    }

    /**
     * The code of a status the shim answered with: gRPC's codes as containerd's errdefs sends them. UNKNOWN and
     * INTERNAL, what a plain error from the shim or runc arrives as, are read by their words
     * ({@link TaskErrors#code}), like the local shim reads runc's.
     */
    static ErrorCode code(TtrpcStatusException status) {
        return switch (status.code()) {
            case NOT_FOUND -> ErrorCode.NOT_FOUND;
            case ALREADY_EXISTS -> ErrorCode.ALREADY_EXISTS;
            case FAILED_PRECONDITION -> ErrorCode.FAILED_PRECONDITION;
            case INVALID_ARGUMENT, OUT_OF_RANGE -> ErrorCode.INVALID_ARGUMENT;
            case UNAVAILABLE -> ErrorCode.UNAVAILABLE;
            case DEADLINE_EXCEEDED -> ErrorCode.DEADLINE_EXCEEDED;
            case RESOURCE_EXHAUSTED -> ErrorCode.RESOURCE_EXHAUSTED;
            case UNKNOWN, INTERNAL -> TaskErrors.code(status.statusMessage(), status);
            default -> ErrorCode.INTERNAL;
        };
    }

    static Throwable map(String action, String task, Throwable error) {
        if (error instanceof TtrpcStatusException status) {
            Throwable refused = stateRefused(action + " " + task, status);
            if (refused != null) {
                return refused;
            }
            ErrorCode code = code(status);
            // A code read from the words, or folded into another, keeps the shim's own in the message.
            String message = action + " " + task + ": " + status.statusMessage()
                    + (code.name().equals(status.code().name()) ? "" : " (" + status.code() + ")");
            return TaskErrors.typed(code, message, status);
        }
        if (error instanceof TtrpcClosedException closed) {
            return new ShimException(ErrorCode.UNAVAILABLE,
                    action + " " + task + ": the shim is gone (" + closed.getMessage() + ")", closed);
        }
        if (error instanceof TtrpcTimeoutException late) {
            return new ShimException(ErrorCode.DEADLINE_EXCEEDED,
                    action + " " + task + ": the shim did not answer in time (" + late.getMessage() + ")", late);
        }
        // Our own shim errors already say what happened to which shim.
        if (error instanceof ShimException shim) {
            return shim;
        }
        return TaskErrors.map(action, task, error);
    }
}
