package org.shimmer.runtime;

import java.util.Optional;

/**
 * How runc is run for a container. Absent values mean "the default". Immutable; the {@code with*} methods
 * return modified copies.
 *
 * @param criuPath the criu binary for checkpoint and restore, or {@code null} for {@code criu} on the PATH
 * @param runtimeRoot runc's state directory ({@code --root}), or {@code null} for {@link #DEFAULT_RUNTIME_ROOT}
 * @param systemdCgroup whether runc manages cgroups through systemd ({@code --systemd-cgroup})
 * @param binaryName the runc binary, or {@code null} for {@link #DEFAULT_BINARY_NAME}
 */
public record RuncOptions(String criuPath, String runtimeRoot, boolean systemdCgroup, String binaryName) {

    /** runc's state directory when none is given. */
    public static final String DEFAULT_RUNTIME_ROOT = "/run/shimmer/runc";

    /** The runc binary when none is given. */
    public static final String DEFAULT_BINARY_NAME = "runc";

    private static final RuncOptions DEFAULTS = new RuncOptions(null, null, false, null);

    public RuncOptions {
        criuPath = blankToNull(criuPath);
        runtimeRoot = blankToNull(runtimeRoot);
        binaryName = blankToNull(binaryName);
    }

    /** Every option at its default. */
    public static RuncOptions defaults() {
        return DEFAULTS;
    }

    public RuncOptions withCriuPath(String criuPath) {
        return new RuncOptions(criuPath, runtimeRoot, systemdCgroup, binaryName);
    }

    public RuncOptions withRuntimeRoot(String runtimeRoot) {
        return new RuncOptions(criuPath, runtimeRoot, systemdCgroup, binaryName);
    }

    public RuncOptions withSystemdCgroup(boolean systemdCgroup) {
        return new RuncOptions(criuPath, runtimeRoot, systemdCgroup, binaryName);
    }

    public RuncOptions withBinaryName(String binaryName) {
        return new RuncOptions(criuPath, runtimeRoot, systemdCgroup, binaryName);
    }

    /** The criu path, if one was given. */
    public Optional<String> criu() {
        return Optional.ofNullable(criuPath);
    }

    /** The runtime root to use: the given one or the default. */
    public String effectiveRuntimeRoot() {
        return runtimeRoot != null ? runtimeRoot : DEFAULT_RUNTIME_ROOT;
    }

    /** The runc binary to use: the given one or the default. */
    public String effectiveBinaryName() {
        return binaryName != null ? binaryName : DEFAULT_BINARY_NAME;
    }

    private static String blankToNull(String value) {
        return value == null || value.isBlank() ? null : value;
    }
}
