package org.shimmer.examples.cli;

import java.util.Locale;
import java.util.regex.Pattern;

/**
 * docker's exit statuses: a container's own status is passed through, and the CLI's failures take the three values
 * a shell does not use for a program's exit ({@code docker run}'s 125, 126 and 127).
 */
final class ExitCodes {

    /** A failure of Shimmer itself: a bad option, an unknown container, a plugin or shim error. */
    static final int SHIMMER = 125;
    /** The container's command exists but cannot be run: permission denied, a directory. */
    static final int CANNOT_RUN = 126;
    /** Our stdout was closed under us ({@code | head}): what a shell reports for a death by SIGPIPE. */
    static final int BROKEN_PIPE = 128 + 13;
    /** The container's command is not found. */
    static final int NOT_FOUND = 127;

    // runc's words for an exec that failed, through either shim: `exec: "x": executable file not found in $PATH`,
    // `exec: "/x": stat /x: no such file or directory`, `exec: "/etc": permission denied` / `is a directory`.
    // The name is Go's %q: a quote or backslash in it escaped (`\"`, `\\`), a control or unprintable character as
    // `\n`, `\x01` or a `u` hex escape, so it ends at the first bare quote; the stat's path is the name as it is, a
    // quote or a newline included, which DOTALL lets `.*` cross. A name of `x": permission denied` stays a name.
    private static final String GO_QUOTED = "\"(?:[^\"\\\\]|\\\\.)*\"";
    private static final Pattern NOT_FOUND_WORDS = Pattern.compile(
            "exec: " + GO_QUOTED + ": (executable file not found|.*no such file or directory)", Pattern.DOTALL);
    private static final Pattern CANNOT_RUN_WORDS = Pattern.compile(
            "exec: " + GO_QUOTED + ": (.*permission denied|.*is a directory|.*exec format error)", Pattern.DOTALL);

    private ExitCodes() {}

    /**
     * The status for {@code failure}, which {@link #message} renders. runc's words may sit in a cause (a run that
     * failed wraps the shim's error), so the whole chain is read.
     */
    static int of(Throwable failure) {
        if (failure instanceof CliException cli) {
            return cli.status();
        }
        for (Throwable cause = failure; cause != null; cause = cause.getCause()) {
            String message = String.valueOf(cause.getMessage()).toLowerCase(Locale.ROOT);
            if (NOT_FOUND_WORDS.matcher(message).find()) {
                return NOT_FOUND;
            }
            if (CANNOT_RUN_WORDS.matcher(message).find()) {
                return CANNOT_RUN;
            }
        }
        return SHIMMER;
    }

    /**
     * {@code failure}'s message as one line. runc's error text ends with a newline, and the remote shim's mapping
     * appends the ttRPC code after it: a two-line {@code … \n (UNKNOWN)} reached the terminal (issue 13). Lines
     * are joined and a bare status code suffix, which tells a user nothing, is dropped.
     */
    static String message(Throwable failure) {
        String message = failure.getMessage() != null ? failure.getMessage() : failure.toString();
        String line = message.strip().replaceAll("\\s*\\R\\s*", "; ");
        return line.replaceFirst(";? \\((UNKNOWN|INTERNAL)\\)$", "");
    }
}
