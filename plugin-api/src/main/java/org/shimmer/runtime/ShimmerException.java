package org.shimmer.runtime;

/** The base of the errors a caller of the runtime can react to by type. */
public abstract class ShimmerException extends RuntimeException {

    protected ShimmerException(String message) {
        super(message);
    }

    protected ShimmerException(String message, Throwable cause) {
        super(message, cause);
    }
}
