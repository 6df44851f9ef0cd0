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

    /**
     * {@code value} in quotes, escaped as a Java string literal would be ({@code "null"} for null): a newline in a
     * bad id printed as is split the message over lines (the CLI showed it joined with "; "), and a quote in it hid
     * where it ended.
     */
    public static String quote(String value) {
        if (value == null) {
            return "null";
        }
        StringBuilder quoted = new StringBuilder(value.length() + 2).append('"');
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            switch (c) {
                case '"' -> quoted.append("\\\"");
                case '\\' -> quoted.append("\\\\");
                case '\n' -> quoted.append("\\n");
                case '\r' -> quoted.append("\\r");
                case '\t' -> quoted.append("\\t");
                default -> {
                    if (Character.isISOControl(c) || Character.getType(c) == Character.FORMAT) {
                        quoted.append(String.format("\\u%04x", (int) c));
                    } else {
                        quoted.append(c);
                    }
                }
            }
        }
        return quoted.append('"').toString();
    }

    /** Always {@link ErrorCode#INVALID_ARGUMENT}. */
    @Override
    public final ErrorCode code() {
        return ErrorCode.INVALID_ARGUMENT;
    }
}
