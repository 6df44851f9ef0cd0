package org.shimmer.examples.cli;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.function.Function;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimOpt;
import reactor.core.publisher.Mono;

/** Reaching a container's shim from another process, and checking the programs a run needs. */
final class Shims {

    private Shims() {}

    /** A client of {@code id}'s live shim, or a failure saying that only remote shims outlive their CLI. */
    static ShimClient require(CliContext context, String id) {
        Bundle bundle = context.runtime().load(context.namespace(), id).block(CliContext.TIMEOUT);
        return connect(bundle).orElseThrow(() -> new CliException("container " + id
                + " has no running shim (only containers run with --shim remote outlive the CLI)"));
    }

    /** Runs one call on {@code id}'s live shim (see {@link #require}) and closes the client, whatever the call did. */
    static void call(CliContext context, String id, Function<ShimClient, Mono<Void>> call) {
        ShimClient shim = require(context, id);
        try {
            call.apply(shim).block(CliContext.TIMEOUT);
        } finally {
            shim.close().block(CliContext.TIMEOUT);
        }
    }

    /** A client of {@code bundle}'s shim if it has one that answers. */
    static Optional<ShimClient> connect(Bundle bundle) {
        if (!Files.exists(bundle.workDir().resolve("shim.json"))) {
            return Optional.empty();
        }
        return Optional.ofNullable(bundle.newShimClient(ShimOpt.connect(), RuncOptions.defaults())
                .onErrorResume(error -> Mono.empty()).block(CliContext.TIMEOUT));
    }

    static boolean remoteAlive(BundleInspection seen) {
        return seen.shim().filter(s -> s.kind() == BundleInspection.ShimKind.REMOTE && s.alive()).isPresent();
    }

    /** The events address the remote shims of this state root publish to. */
    static String daemonAddress(CliContext context) {
        return "shimmer-cli:" + context.stateRoot().toAbsolutePath();
    }

    /** Fails with {@code message} unless {@code name} is an executable path or on the PATH. */
    static void requireExecutable(String name, String message) {
        if (name.contains("/")) {
            if (!Files.isExecutable(Path.of(name))) {
                throw new CliException(message);
            }
            return;
        }
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (Files.isExecutable(Path.of(dir, name))) {
                return;
            }
        }
        throw new CliException(message);
    }
}
