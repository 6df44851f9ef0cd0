package org.shimmer.runtime;

import java.nio.file.Path;
import java.util.Optional;

/**
 * How runc is run for a container. Absent values mean "the default". Immutable; the {@code with*} methods
 * return modified copies.
 *
 * @param criuPath the criu binary for checkpoint and restore, or {@code null} for {@code criu} on the PATH
 * @param runtimeRoot runc's state directory ({@code --root}), or {@code null} for {@link #RUNTIME_ROOT_DIR} under the
 *     runtime's state root
 * @param systemdCgroup whether runc manages cgroups through systemd ({@code --systemd-cgroup})
 * @param binaryName the runc binary, or {@code null} for {@link #DEFAULT_BINARY_NAME}
 */
public record RuncOptions(String criuPath, String runtimeRoot, boolean systemdCgroup, String binaryName) {

    /**
     * runc's state directory when none is given, relative to the runtime's state root. Derived from the state root
     * so that two hosts with different state roots never see each other's runc containers; hidden, so that it is
     * never taken for a namespace.
     */
    public static final String RUNTIME_ROOT_DIR = ".shimmer/runc";

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

    /** The runtime root to use: the given one, or {@link #RUNTIME_ROOT_DIR} under {@code stateRoot}. */
    public String effectiveRuntimeRoot(Path stateRoot) {
        return runtimeRoot != null ? runtimeRoot : stateRoot.resolve(RUNTIME_ROOT_DIR).toString();
    }

    /** These options with the runtime root made explicit: see {@link #effectiveRuntimeRoot(Path)}. */
    public RuncOptions resolvedFor(Path stateRoot) {
        return runtimeRoot != null ? this : withRuntimeRoot(effectiveRuntimeRoot(stateRoot));
    }

    /** The runc binary to use: the given one or the default. */
    public String effectiveBinaryName() {
        return binaryName != null ? binaryName : DEFAULT_BINARY_NAME;
    }

    private static String blankToNull(String value) {
        return value == null || value.isBlank() ? null : value;
    }
}
