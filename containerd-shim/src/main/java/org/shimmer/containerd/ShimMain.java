package org.shimmer.containerd;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.OutputStream;

/**
 * The Java side of {@code containerd-shim-shimmer-v1}. The shell binary answers {@code start} and the usual
 * {@code delete} itself (no JVM on a lifecycle's path) and runs this for {@code daemon} (the namespace's shim
 * daemon) and for a {@code delete} that has something to clean while a daemon runs ({@link DeadTaskCleanup}).
 * Exit status 0 on success; {@link #NOT_DONE} when the daemon could not delete the task (the binary then does);
 * 1 with the error on stderr otherwise; 2 for a bad command line.
 */
public final class ShimMain {

    /** The delete was not done through the daemon. */
    static final int NOT_DONE = 3;

    private ShimMain() {}

    public static void main(String[] args) {
        ShimFlags flags;
        try {
            flags = ShimFlags.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("containerd-shim-shimmer-v1: " + e.getMessage());
            System.exit(2);
            return;
        }
        int status;
        try {
            status = switch (flags.action()) {
                case "daemon" -> ShimDaemon.run(flags);
                case "delete" -> {
                    var response = DeadTaskCleanup.run(flags);
                    if (response.isEmpty()) {
                        yield NOT_DONE;
                    }
                    // containerd parses stdout as the response: nothing else may be written there.
                    try (OutputStream stdout = new FileOutputStream(FileDescriptor.out)) {
                        stdout.write(response.get().toByteArray());
                    }
                    yield 0;
                }
                default -> {
                    System.err.println("containerd-shim-shimmer-v1: unknown action " + flags.action()
                            + " (the binary answers start; daemon and delete run here)");
                    yield 2;
                }
            };
        } catch (Exception e) {
            System.err.println("containerd-shim-shimmer-v1 " + flags.action() + ": " + e);
            status = 1;
        }
        System.exit(status);
    }
}
