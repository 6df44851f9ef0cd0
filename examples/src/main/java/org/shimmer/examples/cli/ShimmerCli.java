package org.shimmer.examples.cli;

import java.io.Console;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.Charset;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine.UnmatchedArgumentException;

/**
 * A docker- and {@code ctr}-like command line over the runtime plugin, loaded through PF4J from a plugins directory
 * exactly as a real host loads it. Every failure is one line {@code shimmer: …} on stderr and docker's exit status
 * ({@link ExitCodes}); a container's own status is passed through.
 */
@Command(name = "shimmer", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = "Runs Linux containers through runc and containerd's shim.",
        synopsisSubcommandLabel = "COMMAND",
        // One line per command: other parts add theirs here.
        subcommands = {
            RunCommand.class,
            ExecCommand.class,
            PsCommand.class,
            KillCommand.class,
            DeleteCommand.class,
            ImagesCommand.class,
            EventsCommand.class,
            PluginsCommand.class,
            CompletionCommand.class,
            LogsCommand.class,
            WaitCommand.class,
            PauseCommand.class,
            ResumeCommand.class,
            StatsCommand.class,
            InspectCommand.class,
        })
public final class ShimmerCli implements Runnable {

    @Mixin
    GlobalOptions global;

    @Spec
    CommandSpec spec;

    private final InputStream in;
    private final PrintStream out;
    private final PrintStream err;
    private final boolean terminal;
    private Map<String, String> environment = System.getenv();
    private CliContext context;

    /**
     * @param in what {@code run -i} and {@code exec -i} forward to the container
     * @param terminal whether {@code out} is a terminal, where progress is drawn in place
     */
    ShimmerCli(InputStream in, PrintStream out, PrintStream err, boolean terminal) {
        this.in = in;
        this.out = out;
        this.err = err;
        this.terminal = terminal;
    }

    ShimmerCli(InputStream in, PrintStream out, PrintStream err) {
        this(in, out, err, false);
    }

    /** No stdin: a command that would forward it reads end of input at once. */
    ShimmerCli(PrintStream out, PrintStream err) {
        this(InputStream.nullInputStream(), out, err, false);
    }

    public static void main(String[] args) {
        Console console = System.console();
        System.exit(new ShimmerCli(System.in, System.out, System.err, console != null && console.isTerminal())
                .execute(args));
    }

    /** This CLI with {@code environment} as ours, where {@code -e K} looks: for tests. */
    ShimmerCli withEnvironment(Map<String, String> environment) {
        this.environment = environment;
        return this;
    }

    /** Runs one command line; returns the exit status. */
    int execute(String[] args) {
        CommandLine line = commandLine();
        try {
            return line.execute(args);
        } finally {
            if (context != null) {
                context.close();
            }
        }
    }

    /** This command with its subcommands, writing to our streams, failures rendered as {@link ExitCodes} says. */
    CommandLine commandLine() {
        CommandLine line = new CommandLine(this);
        line.setOut(new PrintWriter(out, true, Charset.defaultCharset()));
        line.setErr(new PrintWriter(err, true, Charset.defaultCharset()));
        line.setParameterExceptionHandler(this::usageError);
        // docker's rule: every word after the ID is the container's command, options included.
        for (String command : new String[] {"run", "exec"}) {
            line.getSubcommands().get(command).setStopAtPositional(true);
        }
        line.setExecutionExceptionHandler((failure, command, parsed) -> {
            err.println("shimmer: " + ExitCodes.message(failure));
            return ExitCodes.of(failure);
        });
        return line;
    }

    /** A usage error: one line naming the bad word and the command whose help says more; docker's 125. */
    private int usageError(ParameterException failure, String[] args) {
        CommandSpec command = failure.getCommandLine().getCommandSpec();
        String message = ExitCodes.message(failure);
        if (failure instanceof UnmatchedArgumentException unmatched && !command.subcommands().isEmpty()
                && !unmatched.getUnmatched().isEmpty()) {
            // A misspelt command, not picocli's "Unmatched argument at index 0".
            String parent = command.parent() == null ? "" : command.name() + " ";
            message = "unknown " + parent + "command " + unmatched.getUnmatched().getFirst();
        }
        err.println("shimmer: " + message + " (see '" + command.qualifiedName() + " --help')");
        return ExitCodes.SHIMMER;
    }

    /** Without a command: the usage, on stderr, and a usage error's status. */
    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "missing COMMAND");
    }

    /** The context of the command being run, made on first use. */
    CliContext context() {
        if (context == null) {
            context = new CliContext(in, out, err, terminal, environment, global);
        }
        return context;
    }
}
