package org.shimmer.runtime.linux.ttrpc;

/**
 * A call had no answer within its client-side timeout; its stream was freed. Servers do not enforce the deadline
 * they are sent (the runc shim's Wait ignores it), so the client must.
 */
public class TtrpcTimeoutException extends TtrpcException {

    public TtrpcTimeoutException(String message) {
        super(message);
    }
}
