package org.shimmer.examples.cli;

/**
 * A failure the CLI itself finds (a bad option value, a state that refuses the command): one line on stderr and
 * {@link ExitCodes#SHIMMER} unless it says otherwise.
 */
final class CliException extends RuntimeException {

    private final int status;

    CliException(String message) {
        this(message, ExitCodes.SHIMMER);
    }

    CliException(String message, int status) {
        super(message);
        this.status = status;
    }

    int status() {
        return status;
    }
}
