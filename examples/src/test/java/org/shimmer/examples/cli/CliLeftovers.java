package org.shimmer.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.shimmer.examples.host.StateRootCgroups;

/** What a CLI test leaves of its containers under its temporary directory: nothing, checked one way by each. */
final class CliLeftovers {

    private CliLeftovers() {}

    /**
     * No bundle, runc container, mount, process or container cgroup of the default namespace of the state root
     * {@code temp/state} (work root {@code temp/work}); empty cgroups it left are removed on the way.
     */
    static void assertNoneUnder(Path temp) throws Exception {
        for (Path dir : List.of(temp.resolve("state/default"), temp.resolve("work/default"),
                temp.resolve("state/.shimmer/runc/default"))) {
            if (Files.isDirectory(dir)) {
                try (Stream<Path> left = Files.list(dir)) {
                    assertThat(left).as("left in " + dir).isEmpty();
                }
            }
        }
        assertThat(Files.readAllLines(Path.of("/proc/self/mountinfo"))).as("mounts")
                .noneMatch(line -> line.contains(temp.toString()));
        assertThat(Processes.mentioning(temp.toString())).as("processes").isEmpty();
        assertThat(StateRootCgroups.removeEmptyAndListLeft(temp.resolve("state"))).as("container cgroups").isEmpty();
    }
}
