package org.shimmer.runtime.linux.testing;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.shimmer.runtime.linux.spec.CgroupsLeft;
import org.shimmer.runtime.linux.sys.MountTable;

/**
 * What a test that ran containers under its temporary directory ({@code temp/state}, {@code temp/work},
 * {@code temp/runc}) leaves of them: nothing, checked one way by each.
 */
public final class Leftovers {

    /** A check of the test's own between the runc state and the mounts: its processes, its shims. */
    @FunctionalInterface
    public interface Check {
        void run() throws Exception;
    }

    private Leftovers() {}

    /** {@link #assertNoneUnder(Path, String, Check)} with no check of the test's own. */
    public static void assertNoneUnder(Path temp, String namespace) throws Exception {
        assertNoneUnder(temp, namespace, () -> { });
    }

    /**
     * No bundle of {@code namespace} in the state or work root, no runc container of it, then {@code processesGone},
     * then no mount under {@code temp}, no zombie child of the JVM and no container cgroup of the namespace.
     */
    public static void assertNoneUnder(Path temp, String namespace, Check processesGone) throws Exception {
        for (Path root : List.of(temp.resolve("state").resolve(namespace), temp.resolve("work").resolve(namespace))) {
            if (Files.isDirectory(root)) {
                try (Stream<Path> left = Files.list(root)) {
                    assertThat(left).as("bundles left in " + root).isEmpty();
                }
            }
        }
        assertThat(Leaks.runcContainers(temp.resolve("runc").resolve(namespace))).as("runc containers").isEmpty();
        processesGone.run();
        assertThat(MountTable.atOrUnder(MountTable.mountPoints(), temp.toRealPath())).as("mounts left").isEmpty();
        assertThat(Zombies.awaitNone(Duration.ofSeconds(5))).as("zombie children of the JVM").isEmpty();
        CgroupsLeft.assertNoneUnder(temp.resolve("state"), namespace);
    }
}
