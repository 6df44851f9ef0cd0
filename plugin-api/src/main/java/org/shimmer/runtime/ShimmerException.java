package org.shimmer.runtime;

/**
 * The base of the errors a caller of the runtime can react to by type, or by {@link #code()}: every error the
 * runtime reports is one, its cause kept.
 */
public abstract class ShimmerException extends RuntimeException {

    protected ShimmerException(String message) {
        super(message);
    }

    protected ShimmerException(String message, Throwable cause) {
        super(message, cause);
    }

    /**
     * The stable kind of this failure. Each subtype has its own ({@link NotFoundException} is
     * {@link ErrorCode#NOT_FOUND}, …); a {@code ShimException} carries the one chosen where it was
     * made. {@link ErrorCode#INTERNAL} unless a subtype says otherwise.
     */
    public ErrorCode code() {
        return ErrorCode.INTERNAL;
    }
}
