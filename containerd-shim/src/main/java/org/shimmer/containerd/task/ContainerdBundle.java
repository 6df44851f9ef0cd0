package org.shimmer.containerd.task;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import reactor.core.publisher.Mono;

/**
 * A bundle containerd made ({@code <state>/io.containerd.runtime.v2.task/<namespace>/<id>}) as the local shim
 * engine sees one. containerd owns it: it made it and removes it after the task's delete, so this view neither
 * deletes it nor starts shims for it. The work directory is the one containerd links as {@code work} (under its
 * root, kept across reboots as runc's shim keeps its files there), or the bundle itself when there is none.
 */
record ContainerdBundle(String id, String namespace, Path path, Path workDir) implements Bundle {

    /** The bundle at {@code path}, its work directory resolved. Blocking. */
    static ContainerdBundle at(String id, String namespace, Path path) throws IOException {
        if (!path.isAbsolute()) {
            throw new IllegalArgumentException("bundle " + path + " is not an absolute path");
        }
        if (!Files.isDirectory(path, LinkOption.NOFOLLOW_LINKS)) {
            throw new java.nio.file.NoSuchFileException(path.toString(), null, "bundle is not a directory");
        }
        Path work = path.resolve("work");
        Path workDir = Files.isSymbolicLink(work) && Files.isDirectory(work) ? work.toRealPath() : path;
        return new ContainerdBundle(id, namespace, path, workDir);
    }

    @Override
    public Mono<ShimClient> newShimClient(ShimOpt opt, RuncOptions options) {
        return Mono.error(new UnsupportedOperationException("containerd's bundle " + path + " has its shim"));
    }

    @Override
    public Mono<Void> delete() {
        return Mono.error(new UnsupportedOperationException("containerd deletes its bundle " + path));
    }
}
