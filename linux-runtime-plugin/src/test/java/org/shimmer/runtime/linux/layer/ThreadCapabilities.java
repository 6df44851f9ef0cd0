package org.shimmer.runtime.linux.layer;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Runs code on a thread of its own that lacks one capability: capabilities belong to each kernel thread, so
 * dropping one from a fresh thread's effective set leaves the JVM's other threads as they were, and the thread
 * ends with it. What root cannot do without {@code CAP_MKNOD}, a test can then see.
 */
@SuppressWarnings("restricted")
final class ThreadCapabilities {

    static final int CAP_MKNOD = 27;

    private static final int VERSION_3 = 0x20080522;
    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle CAPGET = function("capget");
    private static final MethodHandle CAPSET = function("capset");

    /** Something that may fail. */
    @FunctionalInterface
    interface Action {
        void run() throws Exception;
    }

    private ThreadCapabilities() {}

    /** Runs {@code action} without {@code capability} in its effective set; returns what it threw, null if nothing. */
    static Throwable withoutCapability(int capability, Action action) throws InterruptedException {
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        Thread thread = new Thread(() -> {
            try (Arena arena = Arena.ofConfined()) {
                // struct __user_cap_header_struct { u32 version; int pid; }, then two
                // struct __user_cap_data_struct { u32 effective, permitted, inheritable; }.
                MemorySegment header = arena.allocate(8, 4);
                MemorySegment data = arena.allocate(24, 4);
                header.set(ValueLayout.JAVA_INT, 0, VERSION_3);
                if ((int) CAPGET.invokeExact(header, data) != 0) {
                    throw new IllegalStateException("capget failed");
                }
                long offset = (capability / 32) * 12L;
                int effective = data.get(ValueLayout.JAVA_INT, offset);
                data.set(ValueLayout.JAVA_INT, offset, effective & ~(1 << (capability % 32)));
                if ((int) CAPSET.invokeExact(header, data) != 0) {
                    throw new IllegalStateException("capset failed");
                }
                action.run();
            } catch (Throwable t) {
                thrown.set(t);
            }
        }, "without-capability-" + capability);
        thread.start();
        thread.join();
        return thrown.get();
    }

    private static MethodHandle function(String name) {
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
    }
}
