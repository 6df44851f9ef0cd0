package org.shimmer.runtime.linux.shim.remote;

import org.shimmer.runtime.AlreadyExistsException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.linux.ttrpc.TtrpcClosedException;
import org.shimmer.runtime.linux.ttrpc.TtrpcStatusException;
import org.shimmer.runtime.shim.ShimException;

/** Turns ttRPC failures into the API's typed errors, naming the action and the task. */
final class ShimErrors {

    private ShimErrors() {}

    static Throwable map(String action, String task, Throwable error) {
        if (error instanceof TtrpcStatusException status) {
            String message = action + " " + task + ": " + status.statusMessage();
            return switch (status.code()) {
                case NOT_FOUND -> new NotFoundException(message, status);
                case ALREADY_EXISTS -> new AlreadyExistsException(message, status);
                default -> new ShimException(message + " (" + status.code() + ")", status);
            };
        }
        if (error instanceof TtrpcClosedException closed) {
            return new ShimException(action + " " + task + ": the shim is gone (" + closed.getMessage() + ")",
                    closed);
        }
        if (error instanceof ShimException || error instanceof NotFoundException) {
            return error;
        }
        return new ShimException(action + " " + task + ": " + error.getMessage(), error);
    }
}
