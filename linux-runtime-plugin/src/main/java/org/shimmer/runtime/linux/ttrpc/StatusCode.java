package org.shimmer.runtime.linux.ttrpc;

/** The gRPC status codes ttRPC responses carry. */
public enum StatusCode {
    OK,
    CANCELLED,
    UNKNOWN,
    INVALID_ARGUMENT,
    DEADLINE_EXCEEDED,
    NOT_FOUND,
    ALREADY_EXISTS,
    PERMISSION_DENIED,
    RESOURCE_EXHAUSTED,
    FAILED_PRECONDITION,
    ABORTED,
    OUT_OF_RANGE,
    UNIMPLEMENTED,
    INTERNAL,
    UNAVAILABLE,
    DATA_LOSS,
    UNAUTHENTICATED;

    /** The code's number on the wire. */
    public int value() {
        return ordinal();
    }

    /** The code for a number; numbers outside the table are {@link #UNKNOWN}, as in gRPC. */
    public static StatusCode of(int value) {
        StatusCode[] codes = values();
        return value >= 0 && value < codes.length ? codes[value] : UNKNOWN;
    }
}
