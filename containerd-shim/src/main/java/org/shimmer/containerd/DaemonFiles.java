package org.shimmer.containerd;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.util.Optional;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;

/**
 * The daemon's state directory, shared with the shim binary's {@code start}: {@code lock} (flock(2), the same
 * lock util-linux's {@code flock} takes), {@code pid} (written once the socket serves; its absence means no
 * daemon), {@code last-start} (touched by each {@code start} under the lock, so a daemon about to exit idle sees a
 * task on its way) and the daemon's log.
 */
final class DaemonFiles {

    private final Path dir;

    DaemonFiles(Path dir) {
        this.dir = dir;
    }

    /** Publishes this process as the daemon: whole or not at all. */
    void writePid() throws IOException {
        Path temporary = dir.resolve("pid.tmp");
        Files.writeString(temporary, Long.toString(ProcessHandle.current().pid()), StandardCharsets.UTF_8);
        Files.move(temporary, dir.resolve("pid"), StandardCopyOption.ATOMIC_MOVE);
    }

    /** The daemon's pid as published, if any. */
    Optional<Long> pid() throws IOException {
        try {
            return Optional.of(Long.parseLong(Files.readString(dir.resolve("pid"), StandardCharsets.UTF_8).trim()));
        } catch (NoSuchFileException | NumberFormatException none) {
            return Optional.empty();
        }
    }

    /** Withdraws this process as the daemon, if it is the one published. */
    void removePid() throws IOException {
        if (pid().filter(pid -> pid == ProcessHandle.current().pid()).isPresent()) {
            Files.deleteIfExists(dir.resolve("pid"));
        }
    }

    /** When a {@code start} last ran, or the epoch. */
    FileTime lastStart() throws IOException {
        try {
            return Files.getLastModifiedTime(dir.resolve("last-start"));
        } catch (NoSuchFileException none) {
            return FileTime.fromMillis(0);
        }
    }

    /** Takes the lock {@code start} takes; blocks until it is free. Closing the result releases it. */
    OwnedFd lock() throws IOException {
        Path lock = dir.resolve("lock");
        if (!Files.exists(lock)) {
            Files.createFile(lock);
        }
        OwnedFd fd = OwnedFd.open(lock, LinuxCalls.O_RDWR | LinuxCalls.O_CLOEXEC);
        try {
            fd.use(raw -> LinuxCalls.flock(raw, LinuxCalls.LOCK_EX));
            return fd;
        } catch (IOException | RuntimeException e) {
            fd.close();
            throw e;
        }
    }
}
