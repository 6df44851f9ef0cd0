package org.shimmer.examples.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.shimmer.runtime.InvalidIdentifierException;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.image.ImageNames;
import org.shimmer.runtime.image.ImportRequest;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/** {@code images import|ls|rm}: the runtime's image store, as {@code ctr images} shows it. */
@Command(name = "images", mixinStandardHelpOptions = true, description = "Manage images.",
        synopsisSubcommandLabel = "(import | ls | rm)",
        subcommands = {ImagesCommand.Import.class, ImagesCommand.Ls.class, ImagesCommand.Remove.class})
final class ImagesCommand implements Runnable {

    /** Hex digits of a short digest, as docker shows image ids. */
    private static final int SHORT_DIGEST = 12;

    @ParentCommand
    ShimmerCli shimmer;

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "images needs a command: import, ls or rm");
    }

    @Command(name = "import", mixinStandardHelpOptions = true,
            description = "Import an OCI image layout (a directory or a tar of one).")
    static final class Import implements Callable<Integer> {

        @ParentCommand
        ImagesCommand images;

        @Option(names = "--name", paramLabel = "NAME", description = "The name to give it (default: the layout's"
                + " own).")
        String name;

        @Parameters(index = "0", paramLabel = "PATH", description = "The layout.")
        Path layout;

        @Override
        public Integer call() {
            String valid = name == null ? null : validName(name);
            if (!Files.exists(layout)) {
                throw new CliException("image layout " + layout + " does not exist");
            }
            CliContext context = images.shimmer.context();
            ImportRequest request = valid == null ? ImportRequest.of(layout) : ImportRequest.of(layout)
                    .withName(valid);
            ProgressLine progress = context.terminal ? new ProgressLine(context.out) : null;
            Image image;
            // Ctrl-C (or SIGTERM, SIGHUP) cancels the import rather than killing the JVM under it: the import stops
            // at its next read and deletes its scratch while the runtime closes (which waits for it), so no
            // extracted archive or half layer is left in the store's tmp/ for a later sweep.
            try (StopSignals signals = StopSignals.install()) {
                CompletableFuture<Image> running = context.runtime().images().importLayout(progress == null
                        ? request : request.withProgress(progress)).toFuture();
                signals.target(signal -> running.cancel(false));
                try {
                    image = running.join();
                } catch (CancellationException cancelled) {
                    return signals.exitStatus();
                } catch (CompletionException failed) {
                    throw failed.getCause() instanceof RuntimeException e ? e : failed;
                }
            } finally {
                if (progress != null) {
                    progress.end();
                }
            }
            context.out.printf("imported %s %s (%d layer%s, %s)%n", image.name(), image.digest(),
                    image.layers().size(), image.layers().size() == 1 ? "" : "s", size(image.size()));
            return 0;
        }
    }

    @Command(name = "ls", mixinStandardHelpOptions = true, description = "List images.")
    static final class Ls implements Callable<Integer> {

        @ParentCommand
        ImagesCommand images;

        @Override
        public Integer call() {
            CliContext context = images.shimmer.context();
            List<Image> all = context.runtime().images().list().collectList().block(CliContext.TIMEOUT);
            int nameWidth = all.stream().mapToInt(image -> image.name().length()).max().orElse(0);
            String format = "%-" + Math.max(nameWidth, "NAME".length()) + "s   %-12s   %6s   %9s   %s%n";
            context.out.printf(format, "NAME", "DIGEST", "LAYERS", "SIZE", "IMPORTED");
            for (Image image : all) {
                context.out.printf(format, image.name(), shortDigest(image.digest()), image.layers().size(),
                        size(image.size()), image.imported().truncatedTo(ChronoUnit.SECONDS));
            }
            return 0;
        }
    }

    /**
     * Removes each name given, going on past a failure as {@code docker rmi} does: each failure is its line on
     * stderr and the status is 1. A bad name is a usage error, before anything is removed.
     */
    @Command(name = "rm", mixinStandardHelpOptions = true, description = "Remove images no container uses.")
    static final class Remove implements Callable<Integer> {

        @ParentCommand
        ImagesCommand images;

        @Parameters(arity = "1..*", paramLabel = "NAME", description = "The images' names.")
        List<String> names;

        @Override
        public Integer call() {
            List<String> valid = new ArrayList<>();
            for (String name : names) {
                valid.add(validName(name));
            }
            CliContext context = images.shimmer.context();
            int status = 0;
            for (String name : valid) {
                try {
                    context.runtime().images().remove(name).block(CliContext.TIMEOUT);
                    context.out.println("removed " + name);
                } catch (ShimmerException e) {
                    context.err.println("shimmer: " + ExitCodes.message(e));
                    status = 1;
                }
            }
            return status;
        }
    }

    /** {@code name} normalized ({@code :latest} added), or a failure naming it. */
    static String validName(String name) {
        try {
            return ImageNames.normalize(name);
        } catch (InvalidIdentifierException e) {
            throw new CliException(e.getMessage());
        }
    }

    /** The first hex digits of a {@code sha256:<hex>} digest, as docker's image ids; {@code -} for none. */
    static String shortDigest(String digest) {
        if (digest == null) {
            return "-";
        }
        String hex = digest.substring(digest.indexOf(':') + 1);
        return hex.substring(0, Math.min(SHORT_DIGEST, hex.length()));
    }

    /** Bytes in decimal units with three significant digits, as docker prints sizes: {@code 1.09MB}. */
    static String size(long bytes) {
        String[] units = {"B", "kB", "MB", "GB", "TB"};
        double value = bytes;
        int unit = 0;
        while (value >= 1000 && unit < units.length - 1) {
            value /= 1000;
            unit++;
        }
        return unit == 0 ? bytes + "B" : String.format(Locale.ROOT, value < 10 ? "%.2f%s" : value < 100 ? "%.1f%s"
                : "%.0f%s", value, units[unit]);
    }
}
