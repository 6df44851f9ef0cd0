package org.shimmer.runtime;

import java.nio.file.Path;
import java.util.Objects;
import java.util.Optional;

/**
 * What a shim needs to run a bundle's container: the bundle's directories, its namespace and the resolved runc
 * options, with every absent option replaced by its default.
 *
 * @param path the bundle directory (the shim's working directory)
 * @param workDir the bundle's work directory
 * @param namespace the bundle's namespace
 * @param criuPath the criu binary, if not the one on the PATH
 * @param runtimeRoot runc's {@code --root}
 * @param systemdCgroup whether runc uses the systemd cgroup driver
 * @param runcBinary the runc binary
 */
public record ShimConfig(
        Path path,
        Path workDir,
        String namespace,
        Optional<String> criuPath,
        String runtimeRoot,
        boolean systemdCgroup,
        String runcBinary) {

    public ShimConfig {
        Objects.requireNonNull(path, "path");
        Objects.requireNonNull(workDir, "workDir");
        Objects.requireNonNull(namespace, "namespace");
        Objects.requireNonNull(criuPath, "criuPath");
        Objects.requireNonNull(runtimeRoot, "runtimeRoot");
        Objects.requireNonNull(runcBinary, "runcBinary");
    }

    /**
     * Derives a shim configuration from a bundle and runc options.
     *
     * @param bundle the bundle to run
     * @param options the runc options, or {@code null} for {@link RuncOptions#defaults()}
     */
    public static ShimConfig of(Bundle bundle, RuncOptions options) {
        Objects.requireNonNull(bundle, "bundle");
        RuncOptions effective = options != null ? options : RuncOptions.defaults();
        return new ShimConfig(
                bundle.path(),
                bundle.workDir(),
                bundle.namespace(),
                effective.criu(),
                effective.effectiveRuntimeRoot(),
                effective.systemdCgroup(),
                effective.effectiveBinaryName());
    }
}
