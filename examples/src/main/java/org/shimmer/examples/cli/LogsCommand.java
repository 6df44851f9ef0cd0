package org.shimmer.examples.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.BundleInspection;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code logs}: what a detached container ({@code run -d}) wrote to its log file, {@code <workDir>/console.log}.
 * With {@code -f} it follows the file as it grows (woken by inotify through a {@link WatchService}) until the
 * container's init process exits, then prints the tail and ends.
 */
@Command(name = "logs", mixinStandardHelpOptions = true, description = "Print the output of a detached container.")
final class LogsCommand implements Callable<Integer> {

    /** The log file of a detached container, in its work directory. */
    static final String FILE = "console.log";

    /**
     * After the exit, how long the file must stay unchanged to be complete: the shim copies the container's output
     * into it from a pipe, and may write the last bytes just after the exit.
     */
    static final Duration QUIET = Duration.ofMillis(300);

    @ParentCommand
    ShimmerCli shimmer;

    @Option(names = {"-f", "--follow"}, description = "Follow the output until the container exits.")
    boolean follow;

    @Parameters(index = "0", paramLabel = "ID", description = "The container's id.")
    String id;

    private final ByteBuffer buffer = ByteBuffer.allocate(64 << 10);

    @Override
    public Integer call() {
        CliContext context = shimmer.context();
        Bundle bundle = context.runtime().load(context.namespace(), id).block(CliContext.TIMEOUT);
        Path log = bundle.workDir().resolve(FILE);
        try (SeekableByteChannel file = Files.newByteChannel(log, StandardOpenOption.READ,
                LinkOption.NOFOLLOW_LINKS)) {
            copy(file, context);
            if (follow) {
                follow(context, log, file);
            }
        } catch (NoSuchFileException absent) {
            throw new CliException("container " + id + " has no log file: only a container run with -d writes one");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the log of " + id + ": " + e.getMessage(), e);
        }
        return 0;
    }

    private void follow(CliContext context, Path log, SeekableByteChannel file) throws IOException {
        BundleInspection seen = context.runtime().inspect(context.namespace(), id).block(CliContext.TIMEOUT);
        Optional<ProcessHandle> init = seen.container().filter(BundleInspection.Container::alive)
                .filter(container -> container.pid() > 0)
                .flatMap(container -> ProcessHandle.of(container.pid()));
        CompletableFuture<ProcessHandle> exited = init.map(ProcessHandle::onExit)
                .orElseGet(() -> CompletableFuture.completedFuture(null));
        try (WatchService watch = log.getFileSystem().newWatchService()) {
            // Registered before the next read: a write between the two still wakes us.
            log.getParent().register(watch, StandardWatchEventKinds.ENTRY_MODIFY);
            while (!exited.isDone()) {
                awaitChange(watch, QUIET);
                copy(file, context);
            }
            while (awaitChange(watch, QUIET)) {
                copy(file, context);
            }
            copy(file, context);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Whether something in the log's directory changed within {@code timeout}. */
    private static boolean awaitChange(WatchService watch, Duration timeout) throws InterruptedException {
        WatchKey key = watch.poll(timeout.toMillis(), TimeUnit.MILLISECONDS);
        if (key == null) {
            return false;
        }
        key.pollEvents();
        key.reset();
        return true;
    }

    /** Copies what the file has beyond what was read, to our stdout. */
    private void copy(SeekableByteChannel file, CliContext context) throws IOException {
        while (file.read(buffer.clear()) > 0) {
            context.out.write(buffer.array(), 0, buffer.position());
        }
        context.out.flush();
    }
}
