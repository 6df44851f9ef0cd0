package org.shimmer.runtime.linux.ttrpc;

/** A message body over {@link Frames#MAX_BODY_LENGTH}: refused before sending, or discarded on receipt. */
public class TtrpcMessageTooLargeException extends TtrpcException {

    private final long length;

    public TtrpcMessageTooLargeException(String message, long length) {
        super(message);
        this.length = length;
    }

    /** The length of the body that was too large. */
    public long length() {
        return length;
    }
}
