package org.shimmer.examples.cli;

import java.io.PrintStream;
import java.util.Locale;
import java.util.function.Consumer;
import org.shimmer.runtime.image.ImportProgress;

/**
 * The line {@code images import} rewrites in place on a terminal: layers done of all, the current layer's short diff
 * id, megabytes done of all. Redrawn at most every {@link #INTERVAL_NANOS}, and whenever a layer is done, so a
 * large import does not flood the terminal; each drawing pads over a longer previous one.
 */
final class ProgressLine implements Consumer<ImportProgress> {

    private static final long INTERVAL_NANOS = 100_000_000L;
    private static final double MB = 1_000_000d;

    private final PrintStream terminal;
    private long drawnAt;
    private int drawnLength;
    private int drawnLayers = -1;

    ProgressLine(PrintStream terminal) {
        this.terminal = terminal;
    }

    /** Called on the runtime's blocking scheduler, one import at a time. */
    @Override
    public synchronized void accept(ImportProgress progress) {
        long now = System.nanoTime();
        if (progress.layersDone() == drawnLayers && now - drawnAt < INTERVAL_NANOS) {
            return;
        }
        String line = String.format(Locale.ROOT, "layers %d/%d %s %.1f/%.1f MB", progress.layersDone(),
                progress.layers(), ImagesCommand.shortDigest(progress.layer()), progress.bytesDone() / MB,
                progress.bytes() / MB);
        terminal.print("\r" + line + " ".repeat(Math.max(0, drawnLength - line.length())));
        terminal.flush();
        drawnAt = now;
        drawnLength = line.length();
        drawnLayers = progress.layersDone();
    }

    /** Ends the line, if one was drawn, so that what follows starts on its own. */
    synchronized void end() {
        if (drawnLength > 0) {
            terminal.println();
        }
    }
}
