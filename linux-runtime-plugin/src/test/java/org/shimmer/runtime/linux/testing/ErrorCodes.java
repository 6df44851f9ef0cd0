package org.shimmer.runtime.linux.testing;

import org.assertj.core.api.Condition;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.ShimmerException;

/** Assertions on the stable {@link ErrorCode} of an error, next to those on its type. */
public final class ErrorCodes {

    private ErrorCodes() {}

    /** Holds for a {@link ShimmerException} of {@code code}. */
    public static Condition<Object> code(ErrorCode code) {
        return new Condition<>(error -> error instanceof ShimmerException typed && typed.code() == code,
                "a ShimmerException of code %s", code);
    }
}
