package org.shimmer.runtime.linux.ttrpc;

import java.io.IOException;

/** A server's socket path is served by a live server already (another process, usually). */
public class AddressInUseException extends IOException {

    public AddressInUseException(String message) {
        super(message);
    }
}
