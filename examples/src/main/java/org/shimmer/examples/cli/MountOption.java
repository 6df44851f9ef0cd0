package org.shimmer.examples.cli;

import java.nio.file.Path;
import java.util.Locale;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.spec.Mount;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/**
 * docker's {@code --mount type=bind,src=PATH,dst=PATH[,ro]} as a spec mount: {@code source=} and {@code target=} or
 * {@code destination=} spell the same, {@code ro}, {@code readonly} (or either {@code =true|false}) make it
 * read-only, and {@code type=tmpfs,dst=PATH} is a tmpfs. An unknown key is named in the error, not ignored: a
 * misspelt {@code ro} would otherwise give a writable mount.
 */
final class MountOption implements ITypeConverter<Mount> {

    @Override
    public Mount convert(String value) {
        String type = "bind";
        String source = null;
        String destination = null;
        boolean readonly = false;
        for (String field : value.split(",")) {
            int equals = field.indexOf('=');
            String key = (equals < 0 ? field : field.substring(0, equals)).strip().toLowerCase(Locale.ROOT);
            String val = equals < 0 ? null : field.substring(equals + 1);
            switch (key) {
                case "type" -> type = required(key, val);
                case "src", "source" -> source = required(key, val);
                case "dst", "destination", "target" -> destination = required(key, val);
                case "ro", "readonly" -> readonly = val == null || switch (val.toLowerCase(Locale.ROOT)) {
                    case "true", "1" -> true;
                    case "false", "0" -> false;
                    default -> throw new TypeConversionException(key + "=" + val + " in '" + value
                            + "': true or false");
                };
                default -> throw new TypeConversionException("unknown key '" + key + "' in '" + value
                        + "': type, src, dst and ro are known");
            }
        }
        if (destination == null) {
            throw new TypeConversionException("'" + value + "' has no dst=PATH");
        }
        try {
            return mount(value, type, source, destination, readonly);
        } catch (InvalidSpecException e) {
            throw new TypeConversionException("'" + value + "': " + e.getMessage());
        }
    }

    private static Mount mount(String value, String type, String source, String destination, boolean readonly) {
        return switch (type) {
            case "bind" -> {
                if (source == null) {
                    throw new TypeConversionException("'" + value + "' has no src=PATH");
                }
                // The spec wants an absolute source; a relative one is the user's, from here.
                yield Mount.bind(Path.of(source).toAbsolutePath().normalize().toString(), destination, readonly);
            }
            case "tmpfs" -> readonly ? Mount.tmpfs(destination, "ro", "nosuid", "nodev")
                    : Mount.tmpfs(destination, "nosuid", "nodev");
            default -> throw new TypeConversionException("type=" + type + " in '" + value + "': bind or tmpfs");
        };
    }

    private static String required(String key, String value) {
        if (value == null || value.isEmpty()) {
            throw new TypeConversionException(key + " needs a value: " + key + "=…");
        }
        return value;
    }
}
