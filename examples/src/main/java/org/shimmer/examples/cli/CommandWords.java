package org.shimmer.examples.cli;

import java.util.List;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * The check {@code run} and {@code exec} share: the first command word after the ID must not be one of the
 * command's own options (docker reads options only before the ID). Built from the command's picocli spec, so a new
 * option is covered without a list kept by hand; combined short flags ({@code -it}, {@code -id}) and
 * {@code --opt=value} forms count too.
 */
final class CommandWords {

    private CommandWords() {}

    /** Refuses {@code word} when it is an option of {@code spec}. */
    static void requireNotAnOption(CommandSpec spec, String id, List<String> command) {
        if (!command.isEmpty() && isOption(spec, command.getFirst())) {
            throw new CliException(command.getFirst() + " comes after the ID " + id + ", where it would be the"
                    + " container's command: options go before the ID (or -- " + command.getFirst()
                    + " to run it)");
        }
    }

    static boolean isOption(CommandSpec spec, String word) {
        if (!word.startsWith("-") || word.equals("-") || word.equals("--")) {
            return false;
        }
        String name = word.split("=", 2)[0];
        if (spec.optionsMap().containsKey(name)) {
            return true;
        }
        if (word.startsWith("--") || word.length() < 3) {
            return false;
        }
        // Combined short flags: -it, -id, -eFOO=bar (a short option taking a value ends the cluster).
        for (int i = 1; i < word.length(); i++) {
            OptionSpec option = spec.findOption("-" + word.charAt(i));
            if (option == null) {
                return false;
            }
            if (option.arity().max() > 0 && !option.typeInfo().isBoolean()) {
                return true;
            }
        }
        return true;
    }
}
