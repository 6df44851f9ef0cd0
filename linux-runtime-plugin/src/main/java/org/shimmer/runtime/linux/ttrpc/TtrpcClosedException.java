package org.shimmer.runtime.linux.ttrpc;

/** The connection closed before the call had its answer, or was already closed when the call was made. */
public class TtrpcClosedException extends TtrpcException {

    public TtrpcClosedException(String message) {
        super(message);
    }

    public TtrpcClosedException(String message, Throwable cause) {
        super(message, cause);
    }
}
