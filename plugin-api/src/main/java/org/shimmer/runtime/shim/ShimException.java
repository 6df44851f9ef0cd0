package org.shimmer.runtime.shim;

import org.shimmer.runtime.ShimmerException;

/** A shim operation failed: the shim refused it, the shim is gone, or it could not be started. */
public class ShimException extends ShimmerException {

    public ShimException(String message) {
        super(message);
    }

    public ShimException(String message, Throwable cause) {
        super(message, cause);
    }
}
