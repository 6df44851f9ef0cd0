package org.shimmer.runtime.shim;

/**
 * The size of a terminal in character cells, as {@code TIOCSWINSZ} takes it (and {@code stty size} prints it,
 * rows first).
 *
 * @param width columns, 1 to 65535
 * @param height rows, 1 to 65535
 */
public record TerminalSize(int width, int height) {

    /** The size a terminal gets when nobody says otherwise: 80 columns by 24 rows, as a VT100's. */
    public static final TerminalSize DEFAULT = new TerminalSize(80, 24);

    public TerminalSize {
        if (width < 1 || width > 0xFFFF) {
            throw new IllegalArgumentException("terminal width must be 1 to 65535 columns, not " + width);
        }
        if (height < 1 || height > 0xFFFF) {
            throw new IllegalArgumentException("terminal height must be 1 to 65535 rows, not " + height);
        }
    }
}
