package org.shimmer.runtime;

/** A namespace, id or topic component breaks the {@linkplain Identifiers identifier rules}. */
public class InvalidIdentifierException extends ShimmerException {

    private final String kind;
    private final String value;

    public InvalidIdentifierException(String kind, String value, String reason) {
        super("invalid " + kind + " " + quote(value) + ": " + reason);
        this.kind = kind;
        this.value = value;
    }

    /** What the bad value names: "namespace", "id", "topic", … */
    public String kind() {
        return kind;
    }

    /** The rejected value, possibly {@code null}. */
    public String value() {
        return value;
    }

    private static String quote(String value) {
        return value == null ? "null" : '"' + value + '"';
    }

    /** Always {@link ErrorCode#INVALID_ARGUMENT}. */
    @Override
    public final ErrorCode code() {
        return ErrorCode.INVALID_ARGUMENT;
    }
}
