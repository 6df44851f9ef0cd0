package org.shimmer.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Callable;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.BundleInspection;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.shim.TaskState;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code inspect}: everything known of a container as one JSON document, written by Jackson (so it parses whatever
 * its args hold): its bundle and spec, its status and pid (from its live shim when one answers, else what the
 * machine shows), its shim, its exit once known, its runc container, processes and mounts. Read-only, as
 * {@code ps}.
 */
@Command(name = "inspect", mixinStandardHelpOptions = true, description = "Show a container's details as JSON.")
final class InspectCommand implements Callable<Integer> {

    @ParentCommand
    ShimmerCli shimmer;

    @Parameters(index = "0", paramLabel = "ID", description = "The container's id.")
    String id;

    /** The document, in the order it prints. */
    record Inspected(String id, String namespace, Path bundle, Path workDir, String status, int pid,
            Optional<BundleInspection.Shim> shim, Optional<Exit> exit, Optional<BundleInspection.Container> runc,
            List<Integer> processes, List<Path> mounts, JsonNode spec) {}

    /** How the init process ended. */
    record Exit(int status, Optional<Instant> exitedAt) {}

    @Override
    public Integer call() {
        CliContext context = shimmer.context();
        RuntimePlugin runtime = context.runtime();
        Bundle bundle = runtime.load(context.namespace(), id).block(CliContext.TIMEOUT);
        BundleInspection seen = runtime.inspect(context.namespace(), id).block(CliContext.TIMEOUT);
        Optional<TaskState> task = Optional.ofNullable(runtime.taskState(context.namespace(), id)
                .block(CliContext.TIMEOUT));
        String status = task.map(state -> state.status().name().toLowerCase(Locale.ROOT)).orElse(seen.describe());
        int pid = task.map(TaskState::pid)
                .orElse(seen.container().map(BundleInspection.Container::pid).orElse(0));
        Optional<Exit> exit = task.filter(state -> state.status() == TaskState.Status.STOPPED)
                .map(state -> new Exit(state.exitStatus(), state.exitedAt()));
        context.out.println(Json.pretty(new Inspected(id, context.namespace(), bundle.path(), bundle.workDir(),
                status, pid, seen.shim(), exit, seen.container(), seen.processes(), seen.mounts(), spec(bundle))));
        return 0;
    }

    /** The bundle's OCI spec as its JSON, not re-typed: what runc runs. */
    private static JsonNode spec(Bundle bundle) {
        try {
            return Json.mapper().readTree(Files.readAllBytes(bundle.configFile()));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the spec of " + bundle.namespace() + "/" + bundle.id() + ": "
                    + e.getMessage(), e);
        }
    }
}
