package org.shimmer.examples.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Stream;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.TaskState;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code delete}: without {@code --force}, deletes a stopped task through its live remote shim, shuts the shim down
 * and deletes the bundle; anything still alive is refused with a hint. With it: {@link RuntimePlugin#forceDelete}.
 * Several ids go on past a failure, as {@code docker rm} does: each failure is its line, and the status is 125.
 */
@Command(name = "delete", aliases = "rm", mixinStandardHelpOptions = true, description = "Delete containers.")
final class DeleteCommand implements Callable<Integer> {

    /** How long a {@code delete --force} waits for the CLI that runs a local container to let go of it. */
    private static final Duration HOLDER_LET_GO = Duration.ofSeconds(10);

    @ParentCommand
    ShimmerCli shimmer;

    @Option(names = {"-f", "--force"}, description = "Kill and remove whatever is left, running or not.")
    boolean force;

    @Parameters(arity = "1..*", paramLabel = "ID", description = "The containers' ids.")
    List<String> ids;

    @Override
    public Integer call() {
        CliContext context = shimmer.context();
        if (ids.size() == 1) {
            delete(context, ids.getFirst());
            return 0;
        }
        int status = 0;
        for (String id : ids) {
            try {
                delete(context, id);
            } catch (ShimmerException | CliException e) {
                context.err.println("shimmer: " + ExitCodes.message(e));
                status = ExitCodes.SHIMMER;
            }
        }
        return status;
    }

    private void delete(CliContext context, String id) {
        RuntimePlugin runtime = context.runtime();
        String namespace = context.namespace();
        BundleInspection seen = runtime.inspect(namespace, id).block(CliContext.TIMEOUT);
        if (!seen.present() && !seen.inUse()) {
            // Finishes what an earlier delete left under a hidden name, if anything: that is a delete done.
            boolean leftovers = hasLeftovers(context, id);
            runtime.delete(namespace, id).block(CliContext.TIMEOUT);
            if (leftovers) {
                return;
            }
            throw new NotFoundException("bundle " + namespace + "/" + id + " not found");
        }
        if (force) {
            forceDelete(runtime, namespace, id, seen);
            return;
        }
        Optional<ShimClient> shim = Shims.remoteAlive(seen) && seen.complete()
                ? Shims.connect(runtime.load(namespace, id).block(CliContext.TIMEOUT)) : Optional.empty();
        if (shim.isPresent()) {
            try {
                TaskState state = shim.get().state().block(CliContext.TIMEOUT);
                if (state.status() != TaskState.Status.STOPPED && state.status() != TaskState.Status.CREATED) {
                    shim.get().close().block(CliContext.TIMEOUT);
                    String first = state.status() == TaskState.Status.PAUSED
                            ? "resume it (shimmer resume " + id + ") and kill it first" : "kill it first";
                    throw new CliException("container " + id + " is "
                            + state.status().name().toLowerCase(Locale.ROOT) + "; " + first
                            + ", or use delete --force");
                }
                shim.get().delete().block(CliContext.TIMEOUT);
            } catch (NotFoundException noTask) {
                // The task is gone already; only the shim and the bundle remain.
            }
            shim.get().shutdown().block(CliContext.TIMEOUT);
        } else if (seen.inUse()) {
            throw new CliException("container " + id + " is " + seen.describe() + "; use delete --force");
        }
        runtime.delete(namespace, id).block(CliContext.TIMEOUT);
    }

    /**
     * {@link RuntimePlugin#forceDelete}, which kills a local container another CLI runs but cannot remove its bundle
     * while that CLI's local shim holds it: the {@code run} cleans up once it sees the exit, and the force failed
     * "still in use" (about every other time) with the container already dead. So a live local shim of another
     * process is waited for, at most {@link #HOLDER_LET_GO}, and the delete finished; a bundle its {@code run --rm}
     * removed meanwhile is a delete done.
     */
    private static void forceDelete(RuntimePlugin runtime, String namespace, String id, BundleInspection seen) {
        try {
            runtime.forceDelete(namespace, id).block(CliContext.TIMEOUT);
            return;
        } catch (FailedPreconditionException inUse) {
            Optional<ProcessHandle> holder = seen.shim()
                    .filter(shim -> shim.kind() == BundleInspection.ShimKind.LOCAL && shim.alive()
                            && shim.pid() != ProcessHandle.current().pid())
                    .flatMap(shim -> ProcessHandle.of(shim.pid()));
            if (holder.isEmpty() || !letGo(runtime, namespace, id, holder.get())) {
                throw inUse;
            }
        }
        BundleInspection left = runtime.inspect(namespace, id).block(CliContext.TIMEOUT);
        if (left.present() || left.inUse()) {
            runtime.forceDelete(namespace, id).block(CliContext.TIMEOUT);
        }
    }

    /** Whether {@code holder} let go of the bundle within {@link #HOLDER_LET_GO}: it ended, or its shim did. */
    private static boolean letGo(RuntimePlugin runtime, String namespace, String id, ProcessHandle holder) {
        CompletableFuture<ProcessHandle> exited = holder.onExit();
        long deadline = System.nanoTime() + HOLDER_LET_GO.toNanos();
        while (System.nanoTime() - deadline < 0) {
            if (!runtime.inspect(namespace, id).block(CliContext.TIMEOUT).inUse()) {
                return true;
            }
            try {
                // Woken at once by the holder's exit, the usual end; its shim's shutdown has no signal to wait on.
                exited.get(100, TimeUnit.MILLISECONDS);
            } catch (TimeoutException stillThere) {
                // Looked at again.
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            } catch (ExecutionException impossible) {
                return false;
            }
        }
        return !runtime.inspect(namespace, id).block(CliContext.TIMEOUT).inUse();
    }

    /** Whether an earlier delete of {@code id} left hidden trees ({@code .<id>.deleting-…}, see the README). */
    private static boolean hasLeftovers(CliContext context, String id) {
        String prefix = "." + id + ".deleting-";
        for (Path parent : List.of(context.stateRoot().resolve(context.namespace()),
                context.workRoot().resolve(context.namespace()))) {
            try (Stream<Path> entries = Files.list(parent)) {
                if (entries.anyMatch(entry -> entry.getFileName().toString().startsWith(prefix))) {
                    return true;
                }
            } catch (IOException | UncheckedIOException absent) {
                // No such namespace directory: nothing left there.
            }
        }
        return false;
    }
}
