package org.shimmer.examples.cli;

import java.util.Locale;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** A size as docker's {@code --memory} takes it: a number of bytes with an optional b, k, m or g (binary) suffix. */
final class ByteSize implements ITypeConverter<Long> {

    @Override
    public Long convert(String value) {
        String word = value.strip().toLowerCase(Locale.ROOT);
        int shift = switch (word.isEmpty() ? ' ' : word.charAt(word.length() - 1)) {
            case 'k' -> 10;
            case 'm' -> 20;
            case 'g' -> 30;
            default -> 0;
        };
        String digits = shift > 0 || word.endsWith("b") ? word.substring(0, word.length() - 1) : word;
        if (digits.isEmpty() || !digits.chars().allMatch(Character::isDigit) || digits.length() > 12) {
            throw new TypeConversionException("'" + value + "' is not a size: a number with b, k, m or g");
        }
        long bytes = Long.parseLong(digits) << shift;
        if (bytes <= 0) {
            throw new TypeConversionException("'" + value + "' is not a positive size");
        }
        return bytes;
    }
}
