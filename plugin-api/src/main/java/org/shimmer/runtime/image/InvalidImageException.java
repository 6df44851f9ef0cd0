package org.shimmer.runtime.image;

import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.ShimmerException;

/**
 * An image layout or one of its blobs is not what it claims: malformed JSON, a digest or diff id that does not
 * match, a layer entry that would land outside its layer. The message names the blob or entry.
 */
public class InvalidImageException extends ShimmerException {

    public InvalidImageException(String message) {
        super(message);
    }

    public InvalidImageException(String message, Throwable cause) {
        super(message, cause);
    }

    /** Always {@link ErrorCode#INVALID_ARGUMENT}. */
    @Override
    public final ErrorCode code() {
        return ErrorCode.INVALID_ARGUMENT;
    }
}
