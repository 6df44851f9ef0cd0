package com.example.host;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.pf4j.DefaultPluginManager;
import org.pf4j.PluginManager;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import reactor.core.scheduler.Schedulers;

/**
 * The smallest host: loads the Shimmer plugin zip from a plugins directory through PF4J, uses the runtime, then
 * stops and unloads the plugin and returns. Exits non-zero (an exception) when any step fails.
 *
 * <p>Usage: {@code java --enable-native-access=ALL-UNNAMED -jar target/external-host.jar [PLUGINS_DIR]}.
 */
public final class Main {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    private Main() {}

    public static void main(String[] args) throws Exception {
        Path pluginsDir = Path.of(args.length > 0 ? args[0] : "target/plugins");
        Path stateRoot = Files.createTempDirectory("external-host-state");
        Path workRoot = Files.createTempDirectory("external-host-work");
        // Shared schedulers made by the host, not lazily by plugin code (their threads would pin its loader).
        Schedulers.boundedElastic();
        Schedulers.parallel();
        PluginManager plugins = new DefaultPluginManager(pluginsDir);
        plugins.loadPlugins();
        plugins.startPlugins();
        try {
            RuntimePlugin runtime = plugins.getExtensions(RuntimePlugin.class).getFirst()
                    .withConfig(new RuntimeConfig(stateRoot, workRoot));
            use(runtime);
        } finally {
            plugins.stopPlugins();
            plugins.unloadPlugins();
            removeTree(stateRoot);
            removeTree(workRoot);
        }
        System.out.println("plugin stopped and unloaded");
    }

    private static void use(RuntimePlugin runtime) throws IOException {
        byte[] spec = """
                {"ociVersion": "1.0.2", "process": {"args": ["/bin/echo", "hello"], "cwd": "/"},
                 "root": {"path": "rootfs", "readonly": true}}
                """.getBytes(StandardCharsets.UTF_8);
        Bundle bundle = runtime.create("external", "hello", spec).block(TIMEOUT);
        busyboxRootfs(bundle.path().resolve("rootfs"));
        System.out.println("created " + bundle.namespace() + "/" + bundle.id() + " at " + bundle.path());
        List<String> ids = runtime.list("external").map(Bundle::id).collectList().block(TIMEOUT);
        System.out.println("listed " + ids);
        if (!ids.equals(List.of("hello"))) {
            throw new IllegalStateException("expected the one bundle hello, listed " + ids);
        }
        runtime.delete("external", "hello").block(TIMEOUT);
        if (Files.exists(bundle.path())) {
            throw new IllegalStateException("bundle still at " + bundle.path() + " after delete");
        }
        System.out.println("deleted " + bundle.namespace() + "/" + bundle.id());
    }

    /** A root filesystem of Debian's static busybox ({@code apt-get install busybox-static}) in {@code dir}. */
    private static Path busyboxRootfs(Path dir) throws IOException {
        Path bin = Files.createDirectories(dir.resolve("bin"));
        Files.copy(Path.of("/bin/busybox"), bin.resolve("busybox"), StandardCopyOption.COPY_ATTRIBUTES,
                StandardCopyOption.REPLACE_EXISTING);
        for (String applet : List.of("sh", "echo", "cat", "sleep")) {
            if (!Files.exists(bin.resolve(applet), LinkOption.NOFOLLOW_LINKS)) {
                Files.createSymbolicLink(bin.resolve(applet), Path.of("busybox"));
            }
        }
        for (String mountPoint : List.of("proc", "dev", "sys", "tmp")) {
            Files.createDirectories(dir.resolve(mountPoint));
        }
        return dir;
    }

    private static void removeTree(Path root) throws IOException {
        if (!Files.exists(root, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(root)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(path);
            }
        }
    }
}
