package org.shimmer.examples.cli;

import java.nio.file.Files;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicReference;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.ShimClient;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code wait}: blocks until each container has exited and prints its exit status, in the order given; the CLI
 * exits with the last one's, as {@code docker wait} prints them. A container that exited already answers at once.
 * A container removed by force (or whose shim died) while waited for fails with 125, saying so.
 */
@Command(name = "wait", mixinStandardHelpOptions = true,
        description = "Wait for containers to exit and print their exit statuses.")
final class WaitCommand implements Callable<Integer> {

    @ParentCommand
    ShimmerCli shimmer;

    @Parameters(arity = "1..*", paramLabel = "ID", description = "The containers' ids.")
    List<String> ids;

    @Override
    public Integer call() {
        CliContext context = shimmer.context();
        try (StopSignals signals = StopSignals.install()) {
            return waitFor(context, signals);
        }
    }

    private int waitFor(CliContext context, StopSignals signals) {
        int status = 0;
        for (String id : ids) {
            boolean remote = Files.exists(context.runtime().load(context.namespace(), id).block(CliContext.TIMEOUT)
                    .workDir().resolve("shim.json"));
            ShimClient shim;
            try {
                shim = Shims.require(context, id);
            } catch (RuntimeException noShim) {
                // A remote shim that does not answer (or a bundle gone since) was killed, maybe by a forced delete.
                throw remote ? lost(context, id).orElseThrow(() -> noShim) : noShim;
            }
            try {
                // No bound: a container may run for as long as it likes.
                AtomicReference<ExitStatus> exit = new AtomicReference<>();
                try {
                    OptionalInt signalled = signals.await(shim.awaitExit().doOnNext(exit::set));
                    if (signalled.isPresent()) {
                        return signalled.getAsInt();
                    }
                } catch (RuntimeException failed) {
                    throw lost(context, id).orElseThrow(() -> failed);
                }
                status = exit.get().status();
            } finally {
                shim.close().block(CliContext.TIMEOUT);
            }
            context.out.println(status);
        }
        return status;
    }

    /**
     * What to say when the wait failed because {@code id}'s shim is gone, if it is: removed by force from another
     * CLI (which kills the shim, then deletes the bundle: the delete is waited for a while), or its shim killed.
     * The failure said "detached from its shim; connect() again", an API's hint no CLI user can follow.
     */
    private static Optional<CliException> lost(CliContext context, String id) {
        long deadline = System.nanoTime() + CliContext.TIMEOUT.toNanos();
        try {
            while (true) {
                BundleInspection seen = context.runtime().inspect(context.namespace(), id).block(CliContext.TIMEOUT);
                if (!seen.present()) {
                    return Optional.of(new CliException("container " + id + " was removed while waiting for it"
                            + " (delete --force): its exit status is unknown"));
                }
                if (Shims.remoteAlive(seen)) {
                    return Optional.empty();
                }
                if (System.nanoTime() - deadline > 0) {
                    return Optional.of(new CliException("container " + id + " lost its shim while waiting for it:"
                            + " its exit status is unknown"));
                }
                Thread.sleep(100);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        } catch (RuntimeException unknown) {
            return Optional.empty();
        }
    }
}
