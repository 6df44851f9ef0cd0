package org.shimmer.runtime.image;

import java.util.regex.Pattern;
import org.shimmer.runtime.InvalidIdentifierException;

/**
 * Image names, as docker and containerd spell references without a digest: {@code [host[:port]/]path[:tag]}, a
 * path of lower-case components joined by {@code /}, each of letters and digits separated by {@code .}, {@code _},
 * {@code __} or dashes; a tag of at most 128 letters, digits, {@code _}, {@code .} and {@code -}, not starting with
 * {@code .} or {@code -}. The first component is a host when it holds a {@code .} or a {@code :}, or is
 * {@code localhost}. No tag means {@code latest}. Unlike docker, no {@code docker.io/library/} is put in front:
 * there is no registry here, and {@code busybox} stays {@code busybox:latest}.
 */
public final class ImageNames {

    private static final Pattern COMPONENT = Pattern.compile("[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*");
    private static final Pattern HOST = Pattern.compile(
            "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*"
                    + "[a-zA-Z0-9]))*(?::[0-9]+)?");
    private static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
    private static final int MAX_REPOSITORY = 255;

    private ImageNames() {}

    /**
     * {@code name} with its tag ({@code :latest} when it has none).
     *
     * @throws InvalidIdentifierException naming the value and what is wrong with it
     */
    public static String normalize(String name) {
        if (name == null || name.isEmpty()) {
            throw invalid(name, "empty");
        }
        int slash = name.lastIndexOf('/');
        int colon = name.indexOf(':', slash + 1);
        String repository = colon < 0 ? name : name.substring(0, colon);
        String tag = colon < 0 ? "latest" : name.substring(colon + 1);
        if (!TAG.matcher(tag).matches()) {
            throw invalid(name, "tag " + InvalidIdentifierException.quote(tag)
                    + " must be 1 to 128 of [A-Za-z0-9_.-], not starting with . or -");
        }
        if (repository.length() > MAX_REPOSITORY) {
            throw invalid(name, "repository longer than " + MAX_REPOSITORY + " characters");
        }
        String[] components = repository.split("/", -1);
        for (int i = 0; i < components.length; i++) {
            String component = components[i];
            boolean host = i == 0 && components.length > 1
                    && (component.contains(".") || component.contains(":") || component.equals("localhost"));
            if (host ? !HOST.matcher(component).matches() : !COMPONENT.matcher(component).matches()) {
                throw invalid(name, (host ? "host" : "path component") + " "
                        + InvalidIdentifierException.quote(component) + " is not "
                        + (host ? "a host name with an optional port" : "lower-case letters and digits joined by"
                                + " '.', '_', '__' or dashes"));
            }
        }
        return repository + ":" + tag;
    }

    /** Whether {@code name} is a valid name ({@link #normalize} would not throw). */
    public static boolean isValid(String name) {
        try {
            normalize(name);
            return true;
        } catch (InvalidIdentifierException e) {
            return false;
        }
    }

    private static InvalidIdentifierException invalid(String name, String reason) {
        return new InvalidIdentifierException("image name", name, reason);
    }
}
