package org.shimmer.runtime;

/** A runtime spec is not acceptable, for example not a JSON object, or a typed spec with an invalid field. */
public class InvalidSpecException extends ShimmerException {

    private final String field;

    public InvalidSpecException(String message) {
        super(message);
        this.field = null;
    }

    public InvalidSpecException(String message, Throwable cause) {
        super(message, cause);
        this.field = null;
    }

    /**
     * A typed spec's field is invalid; the message is {@code invalid spec: <field>: <reason>}.
     *
     * @param field the field's path in the spec, as in the OCI JSON, e.g. {@code process.cwd}
     */
    public static InvalidSpecException ofField(String field, String reason) {
        return new InvalidSpecException("invalid spec: " + field + ": " + reason, field);
    }

    private InvalidSpecException(String message, String field) {
        super(message);
        this.field = field;
    }

    /** The path of the invalid field of a typed spec ({@code process.env}, …), or null when not known. */
    public String field() {
        return field;
    }
}
