package org.shimmer.runtime.spec;

import java.util.Collection;
import java.util.List;
import org.shimmer.runtime.InvalidSpecException;

/** The field checks the spec's types share; each failure names the field. */
final class Checks {

    private Checks() {}

    static <T> T required(String field, T value) {
        if (value == null) {
            throw InvalidSpecException.ofField(field, "required, was null");
        }
        return value;
    }

    /**
     * runc hands strings to the kernel as C strings: a NUL would cut them short silently. A lone surrogate has no
     * UTF-8 form: JSON escapes it and runc decodes the escape as U+FFFD, so the process got another string, silently
     * too.
     */
    static String noNul(String field, String value) {
        required(field, value);
        if (value.indexOf('\0') >= 0) {
            throw InvalidSpecException.ofField(field, "contains a NUL character: " + printable(value));
        }
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            boolean paired = Character.isHighSurrogate(c) && i + 1 < value.length()
                    && Character.isLowSurrogate(value.charAt(i + 1));
            if (paired) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw InvalidSpecException.ofField(field, String.format("contains a lone surrogate U+%04X at index"
                        + " %d, which no UTF-8 string holds", (int) c, i));
            }
        }
        return value;
    }

    static String absolutePath(String field, String path) {
        noNul(field, path);
        if (!path.startsWith("/")) {
            throw InvalidSpecException.ofField(field, "must be an absolute path, was \"" + path + "\"");
        }
        return path;
    }

    /** A copy of {@code values}; a null element fails naming it, where {@code List.copyOf} would throw an NPE. */
    static <T> List<T> elements(String field, Collection<T> values) {
        required(field, values);
        int i = 0;
        for (T value : values) {
            required(field + "[" + i + "]", value);
            i++;
        }
        return List.copyOf(values);
    }

    static List<String> noNulEach(String field, List<String> values) {
        elements(field, values);
        for (int i = 0; i < values.size(); i++) {
            noNul(field + "[" + i + "]", values.get(i));
        }
        return List.copyOf(values);
    }

    static List<String> absolutePaths(String field, List<String> paths) {
        elements(field, paths);
        for (int i = 0; i < paths.size(); i++) {
            absolutePath(field + "[" + i + "]", paths.get(i));
        }
        return List.copyOf(paths);
    }

    static long between(String field, long value, long min, long max) {
        if (value < min || value > max) {
            throw InvalidSpecException.ofField(field, "must be " + min + " to " + max + ", was " + value);
        }
        return value;
    }

    static String printable(String value) {
        return "\"" + value.replace("\0", "\\0") + "\"";
    }
}
