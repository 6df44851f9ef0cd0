package org.shimmer.examples.host;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pf4j.DefaultPluginManager;
import org.pf4j.PluginManager;
import org.shimmer.runtime.Container;
import org.shimmer.runtime.RunRequest;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.RuntimePlugin;
import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.spec.Spec;
import reactor.core.publisher.Mono;

/**
 * The README's hosting snippet, verbatim: it runs here against the real plugin zip and real runc, and the README
 * shows exactly these lines.
 */
class HostingSnippetTest {

    private static final String START = "// README hosting snippet: start";
    private static final String END = "// README hosting snippet: end";

    @TempDir
    Path temp;

    @Test
    void theSnippetRunsAContainerPrintsItsOutputGetsItsExitAndCleansUp() throws IOException {
        Path pluginsDir = Files.createDirectories(temp.resolve("plugins"));
        Path zip = pluginZip();
        Files.copy(zip, pluginsDir.resolve(zip.getFileName()));
        Path rootfs = BusyboxRootfs.write(temp.resolve("rootfs"));
        Path bundle = RuntimeConfig.DEFAULT_STATE_ROOT.resolve("default").resolve("hello");
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        PrintStream stdout = System.out;
        System.setOut(new PrintStream(printed, true, UTF_8));
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
        } finally {
            System.setOut(stdout);
        }
        assertThat(printed.toString(UTF_8)).isEqualTo("hello\nexit status 0\n");
        assertThat(bundle).doesNotExist();
        assertThat(RuntimeConfig.DEFAULT_WORK_ROOT.resolve("default").resolve("hello")).doesNotExist();
        assertThat(StateRootCgroups.removeEmptyAndListLeft(RuntimeConfig.DEFAULT_STATE_ROOT))
                .noneMatch(cgroup -> cgroup.endsWith(Path.of("default", "hello")));
    }

    @Test
    void theReadmeAndTheExternalHostShowTheSnippetVerbatimInAtMostTwelveLines() throws IOException {
        List<String> inTest = between(Files.readAllLines(Path.of("src/test/java/org/shimmer/examples/host/"
                + "HostingSnippetTest.java")), START, END);
        List<String> inReadme = between(Files.readAllLines(Path.of("..", "README.md")),
                "<!-- " + START.substring(3) + " -->", "<!-- " + END.substring(3) + " -->");
        assertThat(inReadme).first().isEqualTo("```java");
        assertThat(inReadme).last().isEqualTo("```");
        List<String> code = inReadme.subList(1, inReadme.size() - 1);
        assertThat(code).isEqualTo(inTest.stream().map(line -> line.substring(Math.min(12, indent(line)))).toList())
                .hasSizeLessThanOrEqualTo(12);
        List<String> inExternalHost = between(Files.readAllLines(Path.of("external-host/src/main/java/com/example/"
                + "host/Main.java")), START, END);
        assertThat(inExternalHost).isEqualTo(inTest);
    }

    private static List<String> between(List<String> lines, String start, String end) {
        int from = indexOfTrimmed(lines, start);
        int to = indexOfTrimmed(lines, end);
        assertThat(from).as("line %s", start).isNotNegative();
        assertThat(to).as("line %s", end).isGreaterThan(from);
        return lines.subList(from + 1, to);
    }

    private static int indexOfTrimmed(List<String> lines, String wanted) {
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).strip().equals(wanted)) {
                return i;
            }
        }
        return -1;
    }

    private static int indent(String line) {
        int spaces = 0;
        while (spaces < line.length() && line.charAt(spaces) == ' ') {
            spaces++;
        }
        return spaces;
    }

    private static Path pluginZip() throws IOException {
        Path dir = Path.of(System.getProperty("shimmer.plugins.dir"));
        try (var zips = Files.list(dir)) {
            return zips.filter(path -> path.toString().endsWith(".zip")).findFirst().orElseThrow();
        }
    }
}
