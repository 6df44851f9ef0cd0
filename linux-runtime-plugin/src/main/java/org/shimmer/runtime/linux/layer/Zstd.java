package org.shimmer.runtime.linux.layer;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The streaming decompression calls of the system's {@code libzstd.so.1} (Debian's {@code libzstd1}), through the
 * Foreign Function & Memory API: the plugin carries no native code, and zstd-jni would bring a JNI library of its
 * own into the plugin's zip. The library is looked up the first time a zstd layer is read, so a host without it
 * runs everything else and is told what is missing only when it matters.
 */
// Downcalls are restricted methods; the host grants --enable-native-access to the plugin.
@SuppressWarnings("restricted")
final class Zstd {

    static final String LIBRARY = "libzstd.so.1";

    private static final Linker LINKER = Linker.nativeLinker();
    private static Zstd loaded;
    private static String missing;

    final MethodHandle createDStream;
    final MethodHandle initDStream;
    final MethodHandle decompressStream;
    final MethodHandle freeDStream;
    final MethodHandle isError;
    final MethodHandle getErrorName;
    final long inSize;
    final long outSize;

    private Zstd(SymbolLookup library) throws Throwable {
        createDStream = function(library, "ZSTD_createDStream", FunctionDescriptor.of(ValueLayout.ADDRESS));
        initDStream = function(library, "ZSTD_initDStream",
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
        decompressStream = function(library, "ZSTD_decompressStream",
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                        ValueLayout.ADDRESS));
        freeDStream = function(library, "ZSTD_freeDStream",
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
        isError = function(library, "ZSTD_isError", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
        getErrorName = function(library, "ZSTD_getErrorName",
                FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        inSize = (long) function(library, "ZSTD_DStreamInSize", FunctionDescriptor.of(ValueLayout.JAVA_LONG))
                .invokeExact();
        outSize = (long) function(library, "ZSTD_DStreamOutSize", FunctionDescriptor.of(ValueLayout.JAVA_LONG))
                .invokeExact();
    }

    /** The bindings, made once; the same clear failure every time when the library or a symbol is missing. */
    static synchronized Zstd library() throws IOException {
        if (loaded == null && missing == null) {
            try {
                loaded = load(LIBRARY);
            } catch (IOException e) {
                missing = e.getMessage();
            }
        }
        if (loaded == null) {
            throw new IOException(missing);
        }
        return loaded;
    }

    /** Binds {@code library}'s streaming decompression calls. */
    static Zstd load(String library) throws IOException {
        try {
            return new Zstd(SymbolLookup.libraryLookup(library, Arena.global()));
        } catch (Throwable t) {
            throw new IOException("zstd layers need the system library " + library
                    + " (Debian package libzstd1), which could not be loaded: " + t.getMessage(), t);
        }
    }

    /** Whether {@code code}, a {@code size_t} result, is an error; its name then says which. */
    boolean isError(long code) {
        try {
            return (int) isError.invokeExact(code) != 0;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    String errorName(long code) {
        try {
            MemorySegment name = (MemorySegment) getErrorName.invokeExact(code);
            return name.reinterpret(256).getString(0);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static MethodHandle function(SymbolLookup library, String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(library.find(name)
                .orElseThrow(() -> new IllegalStateException(LIBRARY + " has no " + name)), descriptor);
    }
}
