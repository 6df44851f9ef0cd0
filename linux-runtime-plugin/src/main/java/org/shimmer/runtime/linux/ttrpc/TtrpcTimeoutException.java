package org.shimmer.runtime.linux.ttrpc;

/**
 * A call had no answer within the timeout its caller gave; its stream was freed. The server was sent the same
 * deadline and containerd's servers cancel the handler at it, but a stuck or lost peer never answers, so the
 * client enforces it too.
 */
public class TtrpcTimeoutException extends TtrpcException {

    public TtrpcTimeoutException(String message) {
        super(message);
    }
}
