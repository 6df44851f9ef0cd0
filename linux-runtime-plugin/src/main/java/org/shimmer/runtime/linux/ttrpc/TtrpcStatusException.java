package org.shimmer.runtime.linux.ttrpc;

import java.util.Objects;

/**
 * The peer answered with an error status. Servers fail a handler with this to choose the code they send; clients
 * get it for every non-OK response.
 */
public class TtrpcStatusException extends TtrpcException {

    private final StatusCode code;
    private final String statusMessage;

    public TtrpcStatusException(StatusCode code, String statusMessage) {
        super(code + ": " + statusMessage);
        this.code = Objects.requireNonNull(code, "code");
        this.statusMessage = statusMessage == null ? "" : statusMessage;
    }

    /** The gRPC code. */
    public StatusCode code() {
        return code;
    }

    /** The message the peer sent, as sent. */
    public String statusMessage() {
        return statusMessage;
    }
}
