package org.shimmer.runtime.linux.ttrpc;

import java.util.Map;

/**
 * What a handler knows of the call it serves.
 *
 * @param service the full service name
 * @param method the method name
 * @param streamId the stream the request came on
 * @param metadata request metadata; keys as the client sent them
 * @param timeoutNanos the client's deadline in nanoseconds, 0 for none; the server cancels the handler when it
 *     passes
 */
public record ServerCall(String service, String method, int streamId, Map<String, String> metadata,
        long timeoutNanos) {

    /** containerd's namespace metadata, if the client sent it. */
    public String namespace() {
        return metadata.get(CallOptions.NAMESPACE_KEY);
    }
}
