package org.shimmer.examples.cli;

import java.util.List;
import org.shimmer.runtime.Identifiers;
import org.shimmer.runtime.InvalidIdentifierException;
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

    /**
     * Refuses {@code word} when it is an option of {@code spec}. A bad id is refused first, by name: printed here as
     * it came, a newline in it split the message over lines.
     */
    static void requireNotAnOption(CommandSpec spec, String id, List<String> command) {
        if (!command.isEmpty() && isOption(spec, command.getFirst())) {
            Identifiers.requireValid("id", id);
            String word = shown(command.getFirst());
            throw new CliException(word + " comes after the ID " + id + ", where it would be the container's"
                    + " command: options go before the ID (or -- " + word + " to run it)");
        }
    }

    /** {@code word} as typed, or quoted and escaped when it holds a character that would not show as itself. */
    private static String shown(String word) {
        String quoted = InvalidIdentifierException.quote(word);
        return quoted.equals('"' + word + '"') ? word : quoted;
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
