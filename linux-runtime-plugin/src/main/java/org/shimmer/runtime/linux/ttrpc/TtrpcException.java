package org.shimmer.runtime.linux.ttrpc;

/** A ttRPC call or connection failed; the subclasses say how. */
public class TtrpcException extends RuntimeException {

    public TtrpcException(String message) {
        super(message);
    }

    public TtrpcException(String message, Throwable cause) {
        super(message, cause);
    }
}
