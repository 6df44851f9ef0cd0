package org.shimmer.examples.host;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/** What a host test leaves of its containers under its temporary directory: nothing, checked one way by each. */
final class HostLeftovers {

    private HostLeftovers() {}

    /** No bundle of {@code namespace} in the state or work root, no mount and no process under {@code temp}. */
    static void assertNoneUnder(Path temp, String namespace) throws IOException {
        for (Path dir : List.of(temp.resolve("state").resolve(namespace), temp.resolve("work").resolve(namespace))) {
            if (Files.isDirectory(dir)) {
                try (Stream<Path> left = Files.list(dir)) {
                    assertThat(left).as("left in " + dir).isEmpty();
                }
            }
        }
        assertThat(Files.readAllLines(Path.of("/proc/self/mountinfo"))).as("mounts")
                .noneMatch(line -> line.contains(temp.toString()));
        assertThat(ProcessHandle.allProcesses().flatMap(process -> process.info().commandLine().stream()))
                .as("processes").noneMatch(line -> line.contains(temp.toString()));
    }
}
