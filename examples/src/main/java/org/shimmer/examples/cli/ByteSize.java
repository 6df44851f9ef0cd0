package org.shimmer.examples.cli;

import java.math.BigDecimal;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/**
 * A size as docker's {@code --memory} takes it: a number of bytes, a fraction allowed, with an optional b, k, m, g
 * or t (binary) unit, itself optionally followed by b, in either case: {@code 64m}, {@code 64MB}, {@code 1.5g}.
 */
final class ByteSize implements ITypeConverter<Long> {

    private static final Pattern SIZE = Pattern.compile("(\\d{1,15}(?:\\.\\d{1,9})?|\\.\\d{1,9})([kmgt]?)b?");

    @Override
    public Long convert(String value) {
        Matcher matcher = SIZE.matcher(value.strip().toLowerCase(Locale.ROOT));
        if (!matcher.matches()) {
            throw new TypeConversionException("'" + value + "' is not a size: a number with b, k, m, g or t");
        }
        int shift = switch (matcher.group(2)) {
            case "k" -> 10;
            case "m" -> 20;
            case "g" -> 30;
            case "t" -> 40;
            default -> 0;
        };
        BigDecimal bytes = new BigDecimal(matcher.group(1)).multiply(BigDecimal.valueOf(1L << shift));
        // docker truncates a fraction of a byte.
        java.math.BigInteger whole = bytes.toBigInteger();
        if (whole.bitLength() > 62) {
            throw new TypeConversionException("'" + value + "' is too large a size");
        }
        if (whole.signum() <= 0) {
            throw new TypeConversionException("'" + value + "' is not a positive size");
        }
        return whole.longValue();
    }
}
