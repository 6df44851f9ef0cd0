package org.shimmer.runtime.linux.bundle;

import java.nio.file.Path;
import java.util.Objects;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.linux.shim.TaskErrors;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import reactor.core.publisher.Mono;

/** A bundle of a {@link BundleStore}: its names and directories, plus delete through the store. */
final class LinuxBundle implements Bundle {

    private final String namespace;
    private final String id;
    private final Path path;
    private final Path workDir;
    private final BundleStore store;

    LinuxBundle(String namespace, String id, Path path, Path workDir, BundleStore store) {
        this.namespace = namespace;
        this.id = id;
        this.path = path;
        this.workDir = workDir;
        this.store = store;
    }

    @Override
    public String id() {
        return id;
    }

    @Override
    public String namespace() {
        return namespace;
    }

    @Override
    public Path path() {
        return path;
    }

    @Override
    public Path workDir() {
        return workDir;
    }

    @Override
    public Mono<Void> delete() {
        return store.delete(namespace, id);
    }

    @Override
    public Mono<ShimClient> newShimClient(ShimOpt opt, RuncOptions options) {
        // Whatever fails below (a shim record on a full disk, a socket) reaches the caller typed.
        return store.shims().newShimClient(this, opt, options)
                .onErrorMap(error -> !(error instanceof ShimmerException),
                        error -> TaskErrors.map("start the shim of", "task " + namespace + "/" + id, error));
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof LinuxBundle that
                && namespace.equals(that.namespace) && id.equals(that.id)
                && path.equals(that.path) && workDir.equals(that.workDir);
    }

    @Override
    public int hashCode() {
        return Objects.hash(namespace, id, path, workDir);
    }

    @Override
    public String toString() {
        return "Bundle[" + namespace + "/" + id + " at " + path + ", work " + workDir + "]";
    }
}
