package com.example.host;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.pf4j.DefaultPluginManager;
import org.pf4j.PluginManager;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.spec.Spec;
import reactor.core.publisher.Mono;

/**
 * The smallest host: the README's hosting snippet, as a stranger's project compiles it against the installed
 * artifacts. It loads the plugin zip through PF4J, runs {@code echo hello} in a busybox container, prints its output
 * and exit status, cleans up, stops and unloads the plugin and returns; any failure is an exception (exit status
 * 1), and so is an exit status other than 0.
 *
 * <p>Usage: {@code java --enable-native-access=ALL-UNNAMED -jar target/external-host.jar [PLUGINS_DIR]}.
 */
public final class Main {

    private Main() {}

    public static void main(String[] args) throws IOException {
        Path pluginsDir = Path.of(args.length > 0 ? args[0] : "target/plugins");
        Path rootfs = busyboxRootfs(Files.createTempDirectory("external-host-rootfs"));
        try {
            // README hosting snippet: start
            PluginManager plugins = new DefaultPluginManager(pluginsDir);
            plugins.setSystemVersion(RuntimePlugin.API_VERSION);
            plugins.loadPlugins();
            plugins.startPlugins();
            RuntimePlugin runtime = plugins.getExtensions(RuntimePlugin.class).getFirst();
            RunRequest hello = RunRequest.of("default", "hello", Spec.builder().args("echo", "hello").build(), rootfs);
            ExitStatus exit = Mono.usingWhen(runtime.run(hello),
                    c -> c.stdout().doOnNext(bytes -> System.out.write(bytes, 0, bytes.length)).then(c.exit()),
                    Container::release).block();
            System.out.println("exit status " + exit.status());
            plugins.stopPlugins();
            plugins.unloadPlugins();
            // README hosting snippet: end
            if (exit.status() != 0) {
                throw new IllegalStateException("echo hello exited with " + exit.status());
            }
        } finally {
            removeTree(rootfs);
        }
    }

    /** A root filesystem of Debian's static busybox ({@code apt-get install busybox-static}) in {@code dir}. */
    private static Path busyboxRootfs(Path dir) throws IOException {
        Path bin = Files.createDirectories(dir.resolve("bin"));
        Files.copy(Path.of("/bin/busybox"), bin.resolve("busybox"), StandardCopyOption.COPY_ATTRIBUTES);
        for (String applet : List.of("sh", "echo")) {
            Files.createSymbolicLink(bin.resolve(applet), Path.of("busybox"));
        }
        for (String mountPoint : List.of("proc", "dev", "sys")) {
            Files.createDirectories(dir.resolve(mountPoint));
        }
        return dir;
    }

    private static void removeTree(Path root) throws IOException {
        try (Stream<Path> paths = Files.walk(root)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(path);
            }
        }
    }
}
