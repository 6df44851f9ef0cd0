package org.shimmer.examples.cli;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The CLI's exit statuses, docker's: a container's own status when it ran, otherwise {@link #SHIMMER_ERROR},
 * {@link #CANNOT_INVOKE} or {@link #COMMAND_NOT_FOUND} by what went wrong.
 */
final class ExitCodes {

    /** Shimmer itself failed, or the command line was wrong ({@code docker run} answers 125 for both). */
    static final int SHIMMER_ERROR = 125;
    /** The container's command exists but cannot be run: not executable, a directory, a bad format. */
    static final int CANNOT_INVOKE = 126;
    /** The container's command does not exist. */
    static final int COMMAND_NOT_FOUND = 127;

    /**
     * runc's words when it cannot exec the container's command ({@code exec: "x": executable file not found in
     * $PATH}, {@code exec: "/x": stat /x: no such file or directory}, {@code exec: "/etc": permission denied}).
     * The cause chain carries them, whichever shim ran it.
     */
    private static final Pattern EXEC_FAILED = Pattern.compile("exec: \"[^\"]*\": (.*)", Pattern.DOTALL);

    private ExitCodes() {}

    /** The status for a failure of a command: 126 or 127 when the container's command could not run, else 125. */
    static int of(Throwable failure) {
        for (Throwable cause = failure; cause != null; cause = cause.getCause()) {
            String message = cause.getMessage();
            if (message == null) {
                continue;
            }
            Matcher exec = EXEC_FAILED.matcher(message);
            if (exec.find()) {
                String why = exec.group(1).toLowerCase(Locale.ROOT);
                return why.contains("not found") || why.contains("no such file or directory")
                        ? COMMAND_NOT_FOUND : CANNOT_INVOKE;
            }
        }
        return SHIMMER_ERROR;
    }
}
