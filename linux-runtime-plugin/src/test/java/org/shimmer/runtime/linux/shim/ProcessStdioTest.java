package org.shimmer.runtime.linux.shim;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.linux.sys.LinuxCalls;

class ProcessStdioTest {

    @TempDir
    Path temp;

    /**
     * Init's delete sweeps the io directory while an exec's delete (its streams' release) removes that exec's FIFOs:
     * a FIFO listed by the sweep and gone before it looked at it failed the sweep with NoSuchFileException, so the
     * delete of init failed after the container was gone (and the FIFOs after it in the listing stayed).
     */
    @Test
    void aFifoRemovedByAnotherWhileTheSweepRunsIsSkippedAndTheRestGo() throws Exception {
        Path io = Files.createDirectory(temp.resolve("io"));
        for (int round = 0; round < 5; round++) {
            List<Path> theirs = new ArrayList<>();
            for (int i = 0; i < 500; i++) {
                Path fifo = io.resolve("exec+e" + i + "-stdout");
                LinuxCalls.mkfifo(fifo, 0600);
                theirs.add(fifo);
            }
            Collections.shuffle(theirs);
            CountDownLatch go = new CountDownLatch(1);
            Thread release = Thread.ofPlatform().start(() -> {
                try {
                    go.await();
                    for (Path fifo : theirs) {
                        Files.deleteIfExists(fifo);
                    }
                } catch (IOException | InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            });
            go.countDown();

            ProcessStdio.removeAllFifos(io);

            release.join();
            try (Stream<Path> left = Files.list(io)) {
                assertThat(left).as("round " + round).isEmpty();
            }
        }
    }
}
