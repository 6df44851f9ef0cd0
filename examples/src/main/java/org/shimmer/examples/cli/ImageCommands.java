package org.shimmer.examples.cli;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Locale;
import java.util.function.Supplier;
import org.shimmer.runtime.InvalidIdentifierException;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.image.Image;
import org.shimmer.runtime.image.ImageNames;
import org.shimmer.runtime.image.Images;
import org.shimmer.runtime.image.ImportRequest;

/** {@code images import|ls|rm}: the runtime's image store, as {@code ctr images} shows it. */
final class ImageCommands {

    /** Hex digits of a short digest, as docker shows image ids. */
    private static final int SHORT_DIGEST = 12;

    private final Supplier<Images> images;
    private final PrintStream out;
    private final PrintStream err;
    private final boolean terminal;
    private final Duration timeout;

    /**
     * @param images the store, asked for once the arguments were checked
     * @param terminal whether {@code out} is a terminal: only then is the import's progress drawn
     * @param timeout the bound of a quick call; an import is not bounded
     */
    ImageCommands(Supplier<Images> images, PrintStream out, PrintStream err, boolean terminal, Duration timeout) {
        this.images = images;
        this.out = out;
        this.err = err;
        this.terminal = terminal;
        this.timeout = timeout;
    }

    int execute(Deque<String> args) {
        String command = args.isEmpty() ? "" : args.pop();
        return switch (command) {
            case "import" -> importLayout(args);
            case "ls" -> list(args);
            case "rm" -> remove(args);
            default -> throw new ShimmerCli.CliException((command.isEmpty() ? "images needs a command"
                    : "unknown images command " + command) + ": import, ls or rm", 2);
        };
    }

    private int importLayout(Deque<String> args) {
        Path layout = null;
        String name = null;
        while (!args.isEmpty()) {
            String arg = args.pop();
            if (arg.equals("--name")) {
                name = validName(ShimmerCli.value(args, "--name"));
            } else if (arg.startsWith("-") || layout != null) {
                throw new ShimmerCli.CliException("unexpected argument " + arg + " to images import PATH"
                        + " [--name NAME]", 2);
            } else {
                layout = Path.of(arg);
            }
        }
        if (layout == null) {
            throw new ShimmerCli.CliException("images import needs PATH, an OCI layout directory or a tar of one", 2);
        }
        if (!Files.exists(layout)) {
            throw new ShimmerCli.CliException("image layout " + layout + " does not exist", 1);
        }
        ImportRequest request = name == null ? ImportRequest.of(layout) : ImportRequest.of(layout).withName(name);
        ProgressLine progress = terminal ? new ProgressLine(out) : null;
        Image image;
        try {
            image = images.get().importLayout(progress == null ? request : request.withProgress(progress)).block();
        } finally {
            if (progress != null) {
                progress.end();
            }
        }
        out.printf("imported %s %s (%d layer%s, %s)%n", image.name(), image.digest(), image.layers().size(),
                image.layers().size() == 1 ? "" : "s", size(image.size()));
        return 0;
    }

    private int list(Deque<String> args) {
        if (!args.isEmpty()) {
            throw new ShimmerCli.CliException("unexpected argument " + args.peek() + " to images ls", 2);
        }
        List<Image> all = images.get().list().collectList().block(timeout);
        int nameWidth = all.stream().mapToInt(image -> image.name().length()).max().orElse(0);
        String format = "%-" + Math.max(nameWidth, "NAME".length()) + "s   %-12s   %6s   %9s   %s%n";
        out.printf(format, "NAME", "DIGEST", "LAYERS", "SIZE", "IMPORTED");
        for (Image image : all) {
            out.printf(format, image.name(), shortDigest(image.digest()), image.layers().size(), size(image.size()),
                    image.imported().truncatedTo(ChronoUnit.SECONDS));
        }
        return 0;
    }

    /**
     * Removes each name given, going on past a failure as {@code docker rmi} does: each failure is its line on
     * stderr and the status is 1. A bad name is a usage error, before anything is removed.
     */
    private int remove(Deque<String> args) {
        if (args.isEmpty()) {
            throw new ShimmerCli.CliException("images rm needs NAME...", 2);
        }
        List<String> names = new ArrayList<>();
        for (String name : args) {
            names.add(validName(name));
        }
        int status = 0;
        for (String name : names) {
            try {
                images.get().remove(name).block(timeout);
                out.println("removed " + name);
            } catch (ShimmerException e) {
                err.println("shimmer: " + e.getMessage());
                status = 1;
            }
        }
        return status;
    }

    /** {@code name} normalized ({@code :latest} added), or a usage error naming it. */
    static String validName(String name) {
        try {
            return ImageNames.normalize(name);
        } catch (InvalidIdentifierException e) {
            throw new ShimmerCli.CliException(e.getMessage(), 2);
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
