package org.shimmer.runtime.linux.sys;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.invoke.MutableCallSite;
import java.util.function.Supplier;

/**
 * A downcall handle linked on its first call rather than when {@link LinuxCalls} is initialised.
 *
 * <p>Linking a downcall spins classes (a stub and its lambda forms): {@link LinuxCalls} links about forty, and
 * linking them all in its static initialiser was a third of every CLI command's start-up (issue 13), though a
 * command calls a handful. The handle returned has the real handle's exact type, so call sites keep
 * {@code invokeExact}; after the first call the call site's target is the real handle.
 */
final class LazyDowncall {

    private static final MethodHandle LINK;

    static {
        try {
            LINK = MethodHandles.lookup().findVirtual(LazyDowncall.class, "link",
                    MethodType.methodType(MethodHandle.class));
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final MethodType type;
    private final Supplier<MethodHandle> linker;
    private final MutableCallSite site;
    private MethodHandle linked;

    private LazyDowncall(MethodType type, Supplier<MethodHandle> linker) {
        this.type = type;
        this.linker = linker;
        this.site = new MutableCallSite(type);
    }

    /** A handle of {@code type} that calls what {@code linker} makes, made once, on the first call. */
    static MethodHandle of(MethodType type, Supplier<MethodHandle> linker) {
        LazyDowncall lazy = new LazyDowncall(type, linker);
        // First call: link() supplies the handle that exactInvoker then calls with the caller's arguments.
        lazy.site.setTarget(MethodHandles.foldArguments(MethodHandles.exactInvoker(type), LINK.bindTo(lazy)));
        return lazy.site.dynamicInvoker();
    }

    // A thread that still sees the first target comes here again and gets the handle linked before.
    private synchronized MethodHandle link() {
        if (linked == null) {
            MethodHandle handle = linker.get();
            if (!handle.type().equals(type)) {
                throw new IllegalStateException("a downcall linked as " + handle.type() + ", declared " + type);
            }
            linked = handle;
            site.setTarget(handle);
        }
        return linked;
    }
}
