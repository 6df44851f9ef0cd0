package org.shimmer.runtime;

import java.util.regex.Pattern;

/**
 * containerd's identifier rules, applied to namespaces and ids before they become path components: runs of
 * ASCII letters and digits separated by single {@code .}, {@code _} or {@code -}, at most {@value #MAX_LENGTH}
 * characters. So no identifier is empty, starts with a dot, or contains a slash or {@code ..}.
 */
public final class Identifiers {

    /** The longest identifier accepted. */
    public static final int MAX_LENGTH = 76;

    private static final Pattern IDENTIFIER = Pattern.compile("[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*");

    private Identifiers() {}

    /** Whether {@code value} is a valid identifier. */
    public static boolean isValid(String value) {
        return reasonInvalid(value) == null;
    }

    /**
     * Returns {@code value} if it is a valid identifier.
     *
     * @param kind what the value names, for the error message ("namespace", "id", …)
     * @throws InvalidIdentifierException naming the kind, the value and the rule it breaks
     */
    public static String requireValid(String kind, String value) {
        String reason = reasonInvalid(value);
        if (reason != null) {
            throw new InvalidIdentifierException(kind, value, reason);
        }
        return value;
    }

    private static String reasonInvalid(String value) {
        if (value == null || value.isEmpty()) {
            return "must not be empty";
        }
        if (value.length() > MAX_LENGTH) {
            return "is " + value.length() + " characters, more than the maximum of " + MAX_LENGTH;
        }
        if (!IDENTIFIER.matcher(value).matches()) {
            return "must be letters and digits separated by single '.', '_' or '-'";
        }
        return null;
    }
}
