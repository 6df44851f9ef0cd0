package org.shimmer.examples.host;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.spec.Spec;

/**
 * A minimal host: loads the runtime plugin zip from a plugins directory and creates, lists, loads and deletes a
 * bundle, printing each step.
 *
 * <p>Usage: {@code BundleRoundTrip PLUGINS_DIR [STATE_ROOT WORK_ROOT]}; without roots it uses fresh temporary ones.
 */
public final class BundleRoundTrip {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final String NAMESPACE = "example";
    private static final Spec SPEC = Spec.builder().args("/bin/echo", "hello").build();

    private BundleRoundTrip() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 1 && args.length != 3) {
            System.err.println("usage: BundleRoundTrip PLUGINS_DIR [STATE_ROOT WORK_ROOT]");
            System.exit(2);
        }
        Path pluginsDir = Path.of(args[0]);
        boolean temporaryRoots = args.length == 1;
        Path stateRoot = temporaryRoots ? Files.createTempDirectory("shimmer-state") : Path.of(args[1]);
        Path workRoot = temporaryRoots ? Files.createTempDirectory("shimmer-work") : Path.of(args[2]);
        try {
            roundTrip(pluginsDir, stateRoot, workRoot);
        } finally {
            if (temporaryRoots) {
                removeTree(stateRoot);
                removeTree(workRoot);
            }
        }
    }

    private static void roundTrip(Path pluginsDir, Path stateRoot, Path workRoot) throws Exception {

        try (PluginHost host = PluginHost.start(pluginsDir)) {
            host.started().forEach(plugin -> System.out.printf("loaded plugin %s %s%n",
                    plugin.getPluginId(), plugin.getDescriptor().getVersion()));
            RuntimePlugin runtime = host.runtime().withConfig(new RuntimeConfig(stateRoot, workRoot));

            Bundle created = runtime.create(NAMESPACE, "hello", SPEC).block(TIMEOUT);
            System.out.printf("created %s/%s at %s (work dir %s)%n",
                    created.namespace(), created.id(), created.path(), created.workDir());

            runtime.list(NAMESPACE).doOnNext(bundle -> System.out.printf("listed  %s/%s%n",
                    bundle.namespace(), bundle.id())).blockLast(TIMEOUT);

            Bundle loaded = runtime.load(NAMESPACE, "hello").block(TIMEOUT);
            System.out.printf("loaded  %s/%s, config.json has %d bytes%n",
                    loaded.namespace(), loaded.id(), Files.size(loaded.configFile()));

            loaded.delete().block(TIMEOUT);
            System.out.printf("deleted %s/%s: bundle dir present=%s, work dir present=%s%n", loaded.namespace(),
                    loaded.id(), Files.exists(loaded.path()), Files.exists(loaded.workDir()));
        }
        System.out.println("plugin stopped and unloaded");
    }

    private static void removeTree(Path root) throws IOException {
        try (var paths = Files.walk(root)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(path);
            }
        }
    }
}
