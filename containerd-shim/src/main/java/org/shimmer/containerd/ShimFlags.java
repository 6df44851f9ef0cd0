package org.shimmer.containerd;

import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.shimmer.runtime.Identifiers;

/**
 * The command line containerd gives a runtime-v2 shim binary, parsed as Go's {@code flag} package does
 * ({@code -name value}, {@code -name=value}, one or two dashes, {@code -debug} alone), then the action: e.g.
 * {@code -namespace default -address /run/containerd/containerd.sock -publish-binary /usr/bin/containerd -id c1
 * start}. Namespace and id are checked as containerd checks identifiers before either names a path.
 */
public record ShimFlags(Map<String, String> values, String action) {

    private static final Set<String> VALUED = Set.of("namespace", "address", "publish-binary", "id", "bundle",
            "socket", "state");
    private static final Set<String> BOOLEAN = Set.of("debug", "v");

    public ShimFlags {
        values = Map.copyOf(values);
    }

    /** Parses {@code args}; an unknown flag or a missing value is an error naming it. */
    public static ShimFlags parse(String[] args) {
        Map<String, String> values = new HashMap<>();
        int i = 0;
        while (i < args.length && args[i].startsWith("-") && !args[i].equals("-") && !args[i].equals("--")) {
            String flag = args[i].startsWith("--") ? args[i].substring(2) : args[i].substring(1);
            String name = flag.contains("=") ? flag.substring(0, flag.indexOf('=')) : flag;
            if (BOOLEAN.contains(name)) {
                values.put(name, flag.contains("=") ? flag.substring(flag.indexOf('=') + 1) : "true");
                i++;
            } else if (VALUED.contains(name)) {
                if (flag.contains("=")) {
                    values.put(name, flag.substring(flag.indexOf('=') + 1));
                    i++;
                } else if (i + 1 < args.length) {
                    values.put(name, args[i + 1]);
                    i += 2;
                } else {
                    throw new IllegalArgumentException("flag -" + name + " needs a value");
                }
            } else {
                throw new IllegalArgumentException("unknown flag " + args[i]);
            }
        }
        if (i < args.length && args[i].equals("--")) {
            i++;
        }
        if (i != args.length - 1) {
            throw new IllegalArgumentException(i >= args.length ? "no action given (start, delete or daemon)"
                    : "one action expected after the flags, got " + String.join(" ", java.util.Arrays.asList(args)
                            .subList(i, args.length)));
        }
        return new ShimFlags(values, args[i]);
    }

    /** A flag's value, if given. */
    public Optional<String> value(String name) {
        return Optional.ofNullable(values.get(name)).filter(v -> !v.isEmpty());
    }

    /** A flag that must be there. */
    public String required(String name) {
        return value(name).orElseThrow(() -> new IllegalArgumentException("flag -" + name + " is required"));
    }

    /** The namespace, checked as containerd checks it. */
    public String namespace() {
        return Identifiers.requireValid("namespace", required("namespace"));
    }

    /** The container id, checked as containerd checks it. */
    public String id() {
        return Identifiers.requireValid("container id", required("id"));
    }
}
